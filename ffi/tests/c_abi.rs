//! The C ABI as C and C++ programs see it: the committed header matches the
//! code and compiles as C99 and C++17; the C and C++ examples and the C test
//! programs (`tests/c/abi_test.c`, `tests/c/stream_test.c`), built with the
//! system compilers against the shared and the static library through
//! pkg-config, run against the emulator and print what they should; the C
//! test programs are clean under valgrind.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use polyrelay::config::ConfigSource;
use polyrelay::emulation::{ChunkFault, Emulator, Fault, Method, Reply};
use polyrelay_ffi::pr_status;
use serde_json::Value;

/// The cbindgen release the header is generated with (tests/setup.sh installs it).
const CBINDGEN_VERSION: &str = "0.29.4";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ffi/ has a parent")
        .to_path_buf()
}

/// `target/<profile>/deps`, where this test runs from and where cargo put the
/// libraries it built for it. (`cargo build` also copies them one level up,
/// where the pkg-config files point; `cargo test` does not, so the copies
/// there may be older.)
fn libdir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent().expect("target/<profile>/deps").to_path_buf()
}

/// `target/<profile>/pkgconfig`, where build.rs wrote the pkg-config files.
fn pkg_config_dir() -> PathBuf {
    libdir()
        .parent()
        .expect("target/<profile>")
        .join("pkgconfig")
}

fn work_dir() -> PathBuf {
    let dir = libdir()
        .parent()
        .expect("target/<profile>")
        .join("ffi-tests");
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Library {
    Shared,
    Static,
}

impl Library {
    fn pkg_config_name(self) -> &'static str {
        match self {
            Library::Shared => "polyrelay",
            Library::Static => "polyrelay-static",
        }
    }
}

/// `pkg-config FLAG NAME` with build.rs's files, pointed at the libraries
/// built for this test and at this checkout's header (a target directory
/// shared by several checkouts keeps the files of whichever built it first),
/// split into arguments.
fn pkg_config(flag: &str, library: Library) -> Vec<String> {
    let output = Command::new("pkg-config")
        .arg(format!("--define-variable=libdir={}", libdir().display()))
        .arg(format!(
            "--define-variable=includedir={}",
            repo().join("include").display()
        ))
        .arg(flag)
        .arg(library.pkg_config_name())
        .env("PKG_CONFIG_PATH", pkg_config_dir())
        .output()
        .expect("pkg-config is not installed: run tests/setup.sh");
    assert!(
        output.status.success(),
        "pkg-config {flag} {}: {}",
        library.pkg_config_name(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Compiles `source` with `compiler` and `flags` against `library`, once per
/// test run, and returns the program.
fn build(compiler: &str, source: &Path, flags: &[&str], library: Library) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("program");
    let name = format!("{stem}-{}", library.pkg_config_name());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(program) = built.get(&name) {
        return program.clone();
    }
    let library_file = libdir().join(match library {
        Library::Shared => "libpolyrelay_ffi.so",
        Library::Static => "libpolyrelay_ffi.a",
    });
    assert!(
        library_file.exists(),
        "{} was not built",
        library_file.display()
    );
    let program = work_dir().join(&name);
    let mut command = Command::new(compiler);
    command
        .args(flags)
        .args(pkg_config("--cflags", library))
        .arg(source)
        .args(pkg_config("--libs", library))
        .arg("-pthread")
        .arg("-o")
        .arg(&program);
    if library == Library::Shared {
        command.arg(format!("-Wl,-rpath,{}", libdir().display()));
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{compiler} does not run ({e}): run tests/setup.sh"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.insert(name, program.clone());
    program
}

/// An emulator of every provider, where everything under `/down/` answers
/// 503, everything under `/hang/` never answers, everything under
/// `/throttle/` asks for an hour's wait, and everything under `/refuse/`
/// is OpenAI's content-policy refusal.
fn emulator() -> Emulator {
    let emulator = polyrelay::emulation::start().expect("the emulator starts");
    emulator.fault_always("/down/*", Fault::status(503));
    emulator.fault_always("/hang/*", Fault::Hang);
    emulator.fault_always(
        "/throttle/*",
        Fault::Respond(Reply::new(429).with_header("retry-after", "3600")),
    );
    emulator.fault_always(
        "/refuse/*",
        Fault::Respond(
            Reply::json(&serde_json::json!({"error": {
                "message": "Your request was rejected as a result of our safety system.",
                "type": "invalid_request_error",
                "param": null,
                "code": "content_policy_violation",
            }}))
            .with_status(400),
        ),
    );
    emulator
}

/// The emulator of [`emulator`], also serving the recorded streams of
/// openai, mistral and deepseek under `/stream/`, openai's cut before its
/// fourth event under `/cut/` and stalled before it under `/stall/`, and
/// ollama's (first in the default chain) where ollama is served.
fn stream_emulator() -> Emulator {
    let emulator = emulator();
    for (prefix, id) in [
        ("/stream/openai", "openai"),
        ("/stream/mistral", "mistral"),
        ("/stream/deepseek", "deepseek"),
        ("/cut/openai", "openai"),
        ("/stall/openai", "openai"),
        ("/ollama", "ollama"),
    ] {
        let provider = polyrelay::internal::find_provider(id).expect("a built-in provider");
        let streams = provider.streams_chat().expect("it streams");
        let path = format!("{prefix}{}", streams.stream_fixtures()[0].path);
        let reply = polyrelay::emulation::stream_reply(provider, Duration::ZERO).expect("a stream");
        emulator.route(Method::POST, &path, reply);
    }
    emulator.fault_always("/cut/*", Fault::AtChunk(3, ChunkFault::Cut));
    emulator.fault_always("/stall/*", Fault::AtChunk(3, ChunkFault::Stall));
    emulator
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program` (after `wrapper`, e.g. valgrind) with only `PATH` and the
/// emulator's URL in its environment; killed after `limit`.
fn run(wrapper: &[&str], program: &Path, emulator: &Emulator, limit: Duration) -> Run {
    let mut line: Vec<&std::ffi::OsStr> = wrapper.iter().map(|w| w.as_ref()).collect();
    line.push(program.as_os_str());
    let mut child = Command::new(line[0])
        .args(&line[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("POLYRELAY_EMULATOR_URL", emulator.base_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {line:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{line:?} still running after {limit:?}:\n{}",
                out.join().unwrap().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        success: status.success(),
        stdout: out.join().unwrap().unwrap_or_default(),
        stderr: err.join().unwrap().unwrap_or_default(),
    }
}

fn source(path: &str) -> PathBuf {
    repo().join(path)
}

#[test]
fn header_is_up_to_date() {
    let version = Command::new("cbindgen").arg("--version").output().unwrap_or_else(|e| {
        panic!("cbindgen is not installed ({e}): run tests/setup.sh (installs cbindgen {CBINDGEN_VERSION})")
    });
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        version.trim(),
        format!("cbindgen {CBINDGEN_VERSION}"),
        "the header is generated with cbindgen {CBINDGEN_VERSION}: run tests/setup.sh"
    );
    let generated = work_dir().join("polyrelay.h");
    let output = Command::new("cbindgen")
        .current_dir(repo())
        .args(["--config", "ffi/cbindgen.toml", "--output"])
        .arg(&generated)
        .arg("ffi/src/lib.rs")
        .output()
        .expect("cbindgen runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let committed = std::fs::read_to_string(repo().join("include/polyrelay.h")).unwrap_or_default();
    let generated = std::fs::read_to_string(&generated).expect("generated header");
    assert!(
        committed == generated,
        "include/polyrelay.h is out of date with ffi/src; regenerate it with\n  \
         cbindgen --config ffi/cbindgen.toml --output include/polyrelay.h ffi/src/lib.rs"
    );
}

#[test]
fn header_compiles_as_strict_c99_and_as_cpp17() {
    let probe = work_dir().join("header_probe.c");
    std::fs::write(
        &probe,
        "#include <polyrelay.h>\n#include <string.h>\n\
         int main(void) {\n\
             pr_status status = PR_ERR_SHUTDOWN;\n\
             return strcmp(pr_status_name(status), \"shutdown\") == 0 && POLYRELAY_VERSION_MAJOR >= 0 ? 0 : 1;\n\
         }\n",
    )
    .expect("probe written");
    let probe_cpp = work_dir().join("header_probe_cpp.cpp");
    std::fs::copy(&probe, &probe_cpp).expect("probe copied");
    let strict = ["-Wall", "-Wextra", "-pedantic", "-Werror"];
    let c99 = build(
        "cc",
        &probe,
        &[&["-std=c99"][..], &strict].concat(),
        Library::Shared,
    );
    let cpp17 = build(
        "c++",
        &probe_cpp,
        &[&["-std=c++17"][..], &strict].concat(),
        Library::Shared,
    );
    let emulator = emulator();
    for program in [c99, cpp17] {
        let run = run(&[], &program, &emulator, Duration::from_secs(30));
        assert!(run.success, "{}: {}", program.display(), run.stderr);
    }
}

/// `ffi/install.sh` puts the header, both libraries and their pkg-config
/// files under a prefix; a program built only from what the installed
/// `.pc` files say (no checkout paths) runs against either library.
#[test]
fn the_installed_library_builds_and_runs_the_weather_example() {
    let prefix = work_dir().join("installed");
    let _ = std::fs::remove_dir_all(&prefix);
    let install = Command::new("bash")
        .arg(repo().join("ffi/install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .arg("--lib-dir")
        .arg(libdir())
        .output()
        .expect("bash runs");
    assert!(
        install.status.success(),
        "install.sh: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(prefix.join("include/polyrelay.h").exists());
    let emulator = emulator();
    for library in [Library::Shared, Library::Static] {
        let flags = |flag: &str| -> Vec<String> {
            let output = Command::new("pkg-config")
                .args([flag, library.pkg_config_name()])
                .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
                .output()
                .expect("pkg-config is not installed: run tests/setup.sh");
            assert!(output.status.success(), "pkg-config {flag}");
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                !text.contains(&*repo().to_string_lossy()),
                "the installed {} points into the checkout: {text}",
                library.pkg_config_name()
            );
            text.split_whitespace().map(String::from).collect()
        };
        let program = work_dir().join(format!("installed-weather-{}", library.pkg_config_name()));
        let mut command = Command::new("cc");
        command
            .args(["-std=c99", "-Wall", "-Werror"])
            .args(flags("--cflags"))
            .arg(source("examples/c/weather.c"))
            .args(flags("--libs"))
            .arg("-pthread")
            .arg("-o")
            .arg(&program);
        if library == Library::Shared {
            command.arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()));
        }
        let built = command.output().expect("cc runs");
        assert!(
            built.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let run = run(&[], &program, &emulator, Duration::from_secs(60));
        assert!(run.success, "{library:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("answered by: "), "{}", run.stdout);
    }
}

#[test]
fn c_examples_run_against_the_shared_and_the_static_library() {
    let emulator = emulator();
    let strict = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"];
    for library in [Library::Shared, Library::Static] {
        let weather = build("cc", &source("examples/c/weather.c"), &strict, library);
        let run_weather = run(&[], &weather, &emulator, Duration::from_secs(60));
        eprintln!("{library:?}:\n{}", run_weather.stdout);
        assert!(
            run_weather.success,
            "{library:?}: {}{}",
            run_weather.stdout, run_weather.stderr
        );
        assert!(run_weather
            .stdout
            .contains(&format!("polyrelay {}", env!("CARGO_PKG_VERSION"))));
        assert!(
            run_weather.stdout.contains("answered by: "),
            "{}",
            run_weather.stdout
        );
        assert!(
            run_weather.stdout.contains("weather: {"),
            "{}",
            run_weather.stdout
        );
        assert!(
            run_weather.stdout.contains("\"outcome\":\"success\""),
            "{}",
            run_weather.stdout
        );

        let rates = build("cc", &source("examples/c/async_rates.c"), &strict, library);
        let run_rates = run(&[], &rates, &emulator, Duration::from_secs(60));
        assert!(
            run_rates.success,
            "{library:?}: {}{}",
            run_rates.stdout, run_rates.stderr
        );
        assert!(
            run_rates.stdout.contains("rates from "),
            "{}",
            run_rates.stdout
        );
        assert!(run_rates.stdout.contains("EUR"), "{}", run_rates.stdout);
    }
}

#[test]
fn c_stream_example_prints_the_answer_as_it_is_written() {
    let emulator = stream_emulator();
    let strict = ["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"];
    for library in [Library::Shared, Library::Static] {
        let example = build("cc", &source("examples/c/stream_chat.c"), &strict, library);
        let run = run(&[], &example, &emulator, Duration::from_secs(60));
        eprintln!("{library:?}:\n{}", run.stdout);
        assert!(run.success, "{library:?}: {}{}", run.stdout, run.stderr);
        // Ollama's recorded stream, "The", " sky", " is", " blue", ".".
        assert!(
            run.stdout
                .starts_with("The sky is blue.\n\nanswered by: ollama (first token after "),
            "{}",
            run.stdout
        );
    }
    assert_eq!(emulator.hits("/ollama/*"), 2, "one stream per run");
}

#[test]
fn cpp_example_runs_against_the_shared_and_the_static_library() {
    let emulator = emulator();
    let strict = ["-std=c++17", "-Wall", "-Wextra", "-pedantic", "-Werror"];
    for library in [Library::Shared, Library::Static] {
        let example = build("c++", &source("examples/cpp/example.cpp"), &strict, library);
        let run = run(&[], &example, &emulator, Duration::from_secs(60));
        eprintln!("{library:?}:\n{}", run.stdout);
        assert!(run.success, "{library:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("weather from "), "{}", run.stdout);
        assert!(run.stdout.contains("rates from "), "{}", run.stdout);
        assert!(
            run.stdout.contains("expected error (invalid_request)"),
            "{}",
            run.stdout
        );
        assert!(run.stdout.contains("claims: {"), "{}", run.stdout);
        assert!(
            run.stdout.contains("refreshed subject verified: 1"),
            "{}",
            run.stdout
        );
        // The wrapper keeps the error object's message (it reads the
        // out-parameter only after the call has written it).
        assert!(
            run.stdout
                .contains("expected error (invalid_request): invalid request: "),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("expected token error (reused): refresh token reused; session revoked"),
            "{}",
            run.stdout
        );
    }
}

/// The `fact KEY VALUE` lines of the C test program.
fn facts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("fact "))
        .filter_map(|fact| fact.split_once(' '))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The provider list the core gives a client made from `source` in the C
/// test program's environment (`keys` set besides the emulator's URL).
fn core_catalog(emulator: &Emulator, source: ConfigSource, keys: &[(&str, &str)]) -> Value {
    let vars = keys
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("POLYRELAY_EMULATOR_URL".to_string(), emulator.base_url())]);
    polyrelay::Client::builder()
        .config(source)
        .env_vars(vars)
        .build()
        .expect("the C test program's configuration builds")
        .catalog()
        .to_json()
}

/// Checks the facts the C test program reports, independently of its own checks.
fn check_facts(stdout: &str, emulator: &Emulator) {
    let facts = facts(stdout);
    let fact = |key: &str| {
        facts
            .get(key)
            .unwrap_or_else(|| panic!("no fact {key}:\n{stdout}"))
            .as_str()
    };
    let status = |status: pr_status| format!("{} {}", status as i32, status_name(status));
    use pr_status::*;
    for (case, expected) in [
        ("null_client", PR_ERR_NULL_ARGUMENT),
        ("null_capability", PR_ERR_NULL_ARGUMENT),
        ("null_params", PR_ERR_NULL_ARGUMENT),
        ("null_result_out", PR_ERR_NULL_ARGUMENT),
        ("utf8_capability", PR_ERR_INVALID_UTF8),
        ("utf8_params", PR_ERR_INVALID_UTF8),
        ("invalid_json", PR_ERR_INVALID_JSON),
        ("unknown_capability", PR_ERR_INVALID_REQUEST),
        ("invalid_params", PR_ERR_INVALID_REQUEST),
        ("config_text_syntax", PR_ERR_CONFIG),
        ("config_text_unknown_provider", PR_ERR_CONFIG),
        ("config_text_null", PR_ERR_NULL_ARGUMENT),
        ("config_text_utf8", PR_ERR_INVALID_UTF8),
        ("config_path_missing", PR_ERR_CONFIG),
        ("config_json_invalid", PR_ERR_INVALID_JSON),
        ("config_json_unknown_provider", PR_ERR_CONFIG),
        ("config_json_null", PR_ERR_NULL_ARGUMENT),
        ("client_null_out", PR_ERR_NULL_ARGUMENT),
        ("async_null_callback", PR_ERR_NULL_ARGUMENT),
        ("async_invalid_json", PR_ERR_INVALID_JSON),
        ("async_unknown_capability", PR_ERR_INVALID_REQUEST),
        ("health_null_client", PR_ERR_NULL_ARGUMENT),
        ("stats_null_out", PR_ERR_NULL_ARGUMENT),
        ("call_after_shutdown", PR_ERR_SHUTDOWN),
        ("async_after_shutdown", PR_ERR_SHUTDOWN),
        ("auth_keyset_null_out", PR_ERR_NULL_ARGUMENT),
        ("auth_short_secret", PR_ERR_CONFIG),
        ("auth_alg_none", PR_ERR_CONFIG),
        ("auth_null_secret", PR_ERR_NULL_ARGUMENT),
        ("auth_bad_jwks", PR_ERR_CONFIG),
        ("auth_no_signing_key", PR_ERR_CONFIG),
        ("auth_config_unknown_field", PR_ERR_CONFIG),
        ("auth_config_not_json", PR_ERR_INVALID_JSON),
        ("auth_tampered", PR_ERR_AUTH_BAD_SIGNATURE),
        ("auth_expired", PR_ERR_AUTH_EXPIRED),
        ("auth_not_yet_valid", PR_ERR_AUTH_NOT_YET_VALID),
        ("auth_bad_algorithm", PR_ERR_AUTH_BAD_ALGORITHM),
        ("auth_unknown_key", PR_ERR_AUTH_UNKNOWN_KEY),
        ("auth_wrong_audience", PR_ERR_AUTH_BAD_CLAIM),
        ("auth_malformed", PR_ERR_AUTH_MALFORMED),
        ("auth_null_token", PR_ERR_NULL_ARGUMENT),
        ("auth_utf8_token", PR_ERR_INVALID_UTF8),
        ("auth_verifier_expired", PR_ERR_AUTH_EXPIRED),
        ("auth_reused", PR_ERR_AUTH_REUSED),
        ("auth_refresh_after_reuse", PR_ERR_AUTH_REVOKED),
        ("auth_verify_after_reuse", PR_ERR_AUTH_REVOKED),
        ("auth_verify_revoked", PR_ERR_AUTH_REVOKED),
        ("auth_refresh_logged_out", PR_ERR_AUTH_REVOKED),
    ] {
        assert_eq!(fact(&format!("status.{case}")), status(expected), "{case}");
    }
    for (case, names) in [
        ("null_client", "`client`"),
        ("null_params", "`params_json`"),
        ("null_result_out", "`result`"),
        ("utf8_capability", "`capability`"),
        ("unknown_capability", "weather.tomorrow"),
        ("config_text_unknown_provider", "providers.nope"),
        ("config_path_missing", "/nonexistent/polyrelay.toml"),
        ("config_json_unknown_provider", "providers.nope"),
        ("config_json_null", "`config_json`"),
        ("auth_wrong_audience", "aud"),
        ("auth_config_unknown_field", "ttl"),
        ("auth_short_secret", "shorter than the digest"),
    ] {
        let message = fact(&format!("message.{case}"));
        assert!(message.contains(names), "{case}: {message}");
    }

    // Fallback: open-meteo answered 503 three times, then met-norway answered.
    assert_eq!(fact("fallback.provider"), "met-norway");
    let attempts: Value = serde_json::from_str(fact("fallback.attempts")).expect("attempts JSON");
    let attempts = attempts.as_array().expect("an array");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["provider"], "open-meteo");
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[0]["tries"], 3);
    assert_eq!(attempts[1]["provider"], "met-norway");
    assert_eq!(attempts[1]["outcome"], "success");
    let data: Value = serde_json::from_str(fact("fallback.data")).expect("data JSON");
    assert!(data.is_object(), "{data}");

    // A lone provider asking for an hour: the first call is rate limited,
    // the next finds it benched, with the wait left.
    assert_eq!(fact("throttle.first"), status(PR_ERR_RATE_LIMITED));
    assert_eq!(fact("throttle.next"), status(PR_ERR_RATE_LIMITED));
    let wait: f64 = fact("throttle.retry_after").parse().expect("a number");
    assert!(wait > 3500.0 && wait <= 3600.0, "{wait}");
    let attempts: Value = serde_json::from_str(fact("throttle.attempts")).expect("attempts JSON");
    assert_eq!(attempts[0]["outcome"], "skipped_benched", "{attempts}");

    // A content refusal ends the call at the provider that refused.
    assert_eq!(fact("refused.status"), status(PR_ERR_CONTENT_FILTERED));
    assert_eq!(fact("refused.provider"), "openai 400");
    assert!(
        fact("refused.message").contains("openai refused the content"),
        "{}",
        fact("refused.message")
    );

    assert_eq!(fact("error.status"), status(PR_ERR_PROVIDER_ERROR));
    let attempts: Value = serde_json::from_str(fact("error.attempts")).expect("attempts JSON");
    assert_eq!(attempts[0]["provider"], "open-meteo");

    // Callbacks: each fired once with the right status.
    assert!(fact("async.ok").starts_with("1 0 "), "{}", fact("async.ok"));
    assert_eq!(
        fact("async.error"),
        format!("1 {} provider_error 503", PR_ERR_PROVIDER_ERROR as i32)
    );
    assert_eq!(
        fact("async.blocking_in_callback"),
        (PR_ERR_USAGE as i32).to_string()
    );
    assert_eq!(
        fact("cancel"),
        format!("1 {} cancelled", PR_ERR_CANCELLED as i32)
    );
    assert_eq!(fact("shutdown.async"), "4/4");
    assert_eq!(
        fact("shutdown.blocking"),
        (PR_ERR_SHUTDOWN as i32).to_string()
    );
    assert_eq!(fact("free.async"), "4/4");
    assert_eq!(fact("threads"), "8/8");

    let providers: Value = serde_json::from_str(fact("providers")).expect("providers JSON");
    let listed = providers.as_array().expect("provider listing");
    assert!(listed.len() >= 45, "{} providers listed", listed.len());
    let open_meteo = listed
        .iter()
        .find(|p| p["id"] == "open-meteo")
        .expect("open-meteo");
    assert_eq!(open_meteo["chains"]["weather.current"], 0, "{open_meteo}");

    // The C listing is the core's catalog of the same configuration and
    // environment, built here through the Rust API.
    let keyed: Value = serde_json::from_str(fact("catalog.keyed")).expect("catalog JSON");
    let refuse_config = format!(
        "[providers.openai]\nbase_url = \"{}/refuse/openai\"\n\
         [capabilities.\"llm.chat\"]\nchain = [\"openai\", \"mistral\"]\n",
        emulator.base_url()
    );
    let keys = [
        ("OPENAI_API_KEY", "sk-test-c-abi-openai"),
        ("MISTRAL_API_KEY", "test-c-abi-mistral"),
    ];
    assert_eq!(
        keyed,
        core_catalog(emulator, ConfigSource::Toml(refuse_config), &keys)
    );
    let openai = keyed
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "openai"))
        .expect("openai is listed");
    assert_eq!(openai["key_set"], true, "{openai}");
    assert_eq!(openai["key_env"], "OPENAI_API_KEY", "{openai}");
    assert_eq!(openai["chains"]["llm.chat"], 0, "{openai}");
    assert!(!fact("catalog.keyed").contains("sk-test-c-abi-openai"));

    let from_json: Value = serde_json::from_str(fact("catalog.json")).expect("catalog JSON");
    let json_config = serde_json::json!({
        "capabilities": {"weather.current": {"chain": ["met-norway", "open-meteo"]}},
        "providers": {"wttr-in": {"enabled": false}},
    });
    assert_eq!(
        from_json,
        // Made after the program set the keys.
        core_catalog(emulator, ConfigSource::Json(json_config), &keys)
    );
    let wttr = from_json
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "wttr-in"))
        .expect("wttr-in is listed");
    assert_eq!(wttr["enabled"], false, "{wttr}");
    assert_eq!(wttr["chains"], serde_json::json!({}), "{wttr}");
    let parameters: Value = serde_json::from_str(fact("parameters")).expect("parameters JSON");
    assert_eq!(parameters, polyrelay::CapabilityId::parameter_schemas());
    let health: Value = serde_json::from_str(fact("health")).expect("health JSON");
    assert!(health["capabilities"]["weather.forecast"]["status"].is_string());
    // Stats are keyed by provider id, as in Python.
    let stats: Value = serde_json::from_str(fact("stats")).expect("stats JSON");
    let down = &stats["open-meteo"];
    assert!(down["requests"].as_u64() >= Some(3), "{stats}");
    assert!(down.get("provider").is_none(), "{down}");

    // Tokens: verified claims come back as a JSON object; no error message
    // echoes a token.
    let claims: Value = serde_json::from_str(fact("auth.claims")).expect("claims JSON");
    assert_eq!(claims["sub"], "alice");
    assert!(claims["exp"].as_f64() > claims["iat"].as_f64(), "{claims}");
    for (key, message) in &facts {
        if key.starts_with("message.auth_") {
            assert!(!message.contains("eyJ"), "{key}: {message}");
        }
    }

    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

fn status_name(status: pr_status) -> String {
    // SAFETY: a static NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(polyrelay_ffi::pr_status_name(status as i32)) };
    name.to_string_lossy().into_owned()
}

#[test]
fn c_test_program_passes_against_the_shared_and_the_static_library() {
    for library in [Library::Shared, Library::Static] {
        let emulator = emulator();
        let program = build(
            "cc",
            &source("ffi/tests/c/abi_test.c"),
            &["-std=c11", "-Wall", "-Wextra", "-Werror"],
            library,
        );
        let run = run(&[], &program, &emulator, Duration::from_secs(60));
        eprintln!("{library:?}:\n{}", run.stdout);
        assert!(run.success, "{library:?}:\n{}\n{}", run.stdout, run.stderr);
        check_facts(&run.stdout, &emulator);
        assert!(
            emulator.hits("/down/open-meteo/*") >= 3,
            "the primary was really down"
        );
        assert!(
            emulator.hits("/hang/open-meteo/*") >= 1,
            "calls were really in flight"
        );
        assert_eq!(
            emulator.hits("/throttle/open-meteo/*"),
            1,
            "the benched provider was asked once"
        );
        assert_eq!(
            emulator.hits("/refuse/openai/*"),
            1,
            "a refusal is not retried"
        );
        assert_eq!(
            emulator.hits("/mistral/*"),
            0,
            "a refused prompt is not sent on"
        );
        assert_eq!(
            emulator.hits("/openai/*"),
            1,
            "the call past its budget was not sent"
        );
    }
}

/// Runs the C test program `source` under valgrind against `emulator`,
/// checks its facts with `check` and asserts that valgrind found no error
/// and no leak of ours.
fn assert_clean_under_valgrind(source: &Path, emulator: &Emulator, check: fn(&str, &Emulator)) {
    let valgrind = Command::new("valgrind").arg("--version").output();
    assert!(
        valgrind.is_ok_and(|v| v.status.success()),
        "valgrind is not installed: run tests/setup.sh"
    );
    let program = build(
        "cc",
        source,
        &["-std=c11", "-Wall", "-Wextra", "-Werror"],
        Library::Shared,
    );
    let run = run(
        &[
            "valgrind",
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=1",
        ],
        &program,
        emulator,
        Duration::from_secs(150),
    );
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| {
            l.contains("lost:") || l.contains("ERROR SUMMARY") || l.contains("in use at exit")
        })
        .collect();
    eprintln!("valgrind:\n{}", summary.join("\n"));
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    check(&run.stdout, emulator);
    let lost = |kind: &str| {
        run.stderr
            .lines()
            .find(|l| l.contains(&format!("{kind} lost:")))
            .map(|l| l.contains(&format!("{kind} lost: 0 bytes")))
            .unwrap_or(run.stderr.contains("All heap blocks were freed"))
    };
    assert!(lost("definitely"), "{}", run.stderr);
    assert!(lost("indirectly"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ERROR SUMMARY: 0 errors"),
        "{}",
        run.stderr
    );
}

#[test]
fn c_test_program_is_clean_under_valgrind() {
    let emulator = emulator();
    assert_clean_under_valgrind(&source("ffi/tests/c/abi_test.c"), &emulator, check_facts);
}

/// The chunks (text and reasoning) and the outcome of a stream of `question`
/// made with the Rust API from the TOML `config` (`%s` replaced by the
/// emulator's URL), with the C test program's fake keys.
fn core_stream(
    emulator: &Emulator,
    config: &str,
    question: &str,
) -> (Vec<polyrelay::ChatChunk>, Option<polyrelay::Error>) {
    let vars = [
        ("OPENAI_API_KEY", "sk-test-c-stream-openai"),
        ("MISTRAL_API_KEY", "test-c-stream-mistral"),
        ("DEEPSEEK_API_KEY", "sk-test-c-stream-deepseek"),
        ("POLYRELAY_EMULATOR_URL", &emulator.base_url()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let client = polyrelay::Client::builder()
        .config(ConfigSource::Toml(
            config.replace("%s", &emulator.base_url()),
        ))
        .env_vars(vars)
        .build()
        .expect("the configuration builds");
    let params = serde_json::json!({"messages": [{"role": "user", "content": question}]});
    polyrelay::internal::block_on(async move {
        let mut stream = client.stream("llm.chat", params).expect("a valid stream");
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => chunks.push(chunk),
                Err(error) => return (chunks, Some(error)),
            }
        }
        (chunks, None)
    })
    .expect("not on a polyrelay thread")
}

/// The joined text and reasoning of `chunks`, and how many there were.
fn joined(chunks: &[polyrelay::ChatChunk]) -> (String, String, usize) {
    let (mut text, mut reasoning, mut count) = (String::new(), String::new(), 0);
    for chunk in chunks {
        match chunk {
            polyrelay::ChatChunk::Text(t) => text.push_str(t),
            polyrelay::ChatChunk::Reasoning(r) => reasoning.push_str(r),
            _ => continue,
        }
        count += 1;
    }
    (text, reasoning, count)
}

/// Checks the facts the C stream test program reports against the same
/// streams read with the Rust API, on an emulator of their own.
fn check_stream_facts(stdout: &str, emulator: &Emulator) {
    let facts = facts(stdout);
    let fact = |key: &str| {
        facts
            .get(key)
            .unwrap_or_else(|| panic!("no fact {key}:\n{stdout}"))
            .as_str()
    };
    let json = |key: &str| -> Value {
        serde_json::from_str(fact(key)).unwrap_or_else(|e| panic!("{key}: {e}: {}", fact(key)))
    };
    let status = |status: pr_status| format!("{} {}", status as i32, status_name(status));
    use pr_status::*;
    for (case, expected) in [
        ("start_null_client", PR_ERR_NULL_ARGUMENT),
        ("start_null_on_chunk", PR_ERR_NULL_ARGUMENT),
        ("start_null_on_done", PR_ERR_NULL_ARGUMENT),
        ("start_not_streaming", PR_ERR_INVALID_REQUEST),
        ("start_no_messages", PR_ERR_INVALID_REQUEST),
        ("start_invalid_json", PR_ERR_INVALID_JSON),
        ("open_null_out", PR_ERR_NULL_ARGUMENT),
        ("open_utf8", PR_ERR_INVALID_UTF8),
        ("open_unknown_capability", PR_ERR_INVALID_REQUEST),
        ("next_null_stream", PR_ERR_NULL_ARGUMENT),
        ("next_null_text", PR_ERR_NULL_ARGUMENT),
        ("open_after_shutdown", PR_ERR_SHUTDOWN),
    ] {
        assert_eq!(fact(&format!("status.{case}")), status(expected), "{case}");
    }
    assert!(fact("message.start_null_on_chunk").contains("`on_chunk`"));
    assert!(fact("message.start_not_streaming").contains("only llm.chat"));

    let reference = stream_emulator();
    let config = |prefix: &str| {
        format!(
            "[providers.openai]\nbase_url = \"%s/{prefix}/openai\"\n\
             [capabilities.\"llm.chat\"]\nchain = [\"openai\"]\n"
        )
    };
    // Pushed and pulled, the C program saw the chunks the Rust API sees.
    let (chunks, end) = core_stream(&reference, &config("stream"), "push");
    assert!(end.is_none(), "{end:?}");
    let (text, _, count) = joined(&chunks);
    assert!(count > 1, "{chunks:?}");
    assert_eq!(fact("push.done"), format!("1 {}", status(PR_OK)));
    assert_eq!(fact("push.text"), text);
    assert_eq!(fact("push.chunks"), count.to_string());
    assert_eq!(json("push.data")["text"], text.as_str());
    assert_eq!(
        json("push.parts"),
        serde_json::json!([{"provider": "openai", "chars": text.chars().count()}])
    );
    assert_eq!(fact("push.cached"), "0");
    assert_eq!(fact("cached.done"), format!("1 {}", status(PR_OK)));
    assert_eq!(fact("cached.text"), text);
    assert_eq!(fact("cached.chunks"), "1");
    assert_eq!(fact("cached.cached"), "1");
    assert_eq!(fact("pull.status"), status(PR_STREAM_DONE));
    assert_eq!(fact("pull.text"), text);
    assert_eq!(fact("pull.chunks"), count.to_string());
    assert_eq!(json("pull.data")["text"], text.as_str());

    // Reasoning apart from the text.
    let deepseek = "[providers.deepseek]\nbase_url = \"%s/stream/deepseek\"\n\
                    [capabilities.\"llm.chat\"]\nchain = [\"deepseek\"]\n";
    let (chunks, end) = core_stream(&reference, deepseek, "reasoning");
    assert!(end.is_none(), "{end:?}");
    let (text, reasoning, count) = joined(&chunks);
    assert!(!reasoning.is_empty(), "{chunks:?}");
    assert_eq!(fact("reasoning.text"), text);
    assert_eq!(fact("reasoning.reasoning"), reasoning);
    assert_eq!(fact("reasoning.chunks"), count.to_string());

    // Cut mid-stream: the partial text, pushed and pulled.
    let (chunks, end) = core_stream(&reference, &config("cut"), "cut");
    let (partial, _, count) = joined(&chunks);
    match end {
        Some(polyrelay::Error::StreamInterrupted { partial: p, .. }) => assert_eq!(p, partial),
        other => panic!("{other:?}"),
    }
    assert!(!partial.is_empty());
    assert_eq!(
        fact("interrupted.done"),
        format!("1 {}", status(PR_ERR_STREAM_INTERRUPTED))
    );
    assert_eq!(fact("interrupted.partial"), partial);
    assert_eq!(fact("interrupted.text"), partial);
    assert_eq!(fact("interrupted.chunks"), count.to_string());
    assert_eq!(
        fact("pull_interrupted.status"),
        status(PR_ERR_STREAM_INTERRUPTED)
    );
    assert_eq!(fact("pull_interrupted.partial"), partial);

    // Continued by mistral after the cut.
    assert_eq!(fact("continued.done"), format!("1 {}", status(PR_OK)));
    let continued = fact("continued.text");
    assert!(continued.starts_with(&partial) && continued.len() > partial.len());
    assert_eq!(json("continued.data")["text"], continued);
    assert_eq!(
        json("continued.parts"),
        serde_json::json!([
            {"provider": "openai", "chars": partial.chars().count()},
            {"provider": "mistral", "chars": continued.chars().count() - partial.chars().count()},
        ])
    );

    // Ended early: once each, with the status that says why.
    assert_eq!(
        fact("cancel.done"),
        format!("1 {}", status(PR_ERR_CANCELLED))
    );
    assert_eq!(fact("cancel.chunks"), "2");
    assert_eq!(fact("stop.done"), format!("1 {}", status(PR_ERR_CANCELLED)));
    assert_eq!(fact("stop.chunks"), "1");
    assert_eq!(fact("pull_freed.chunks"), "2");
    assert_eq!(
        fact("down.push"),
        format!("1 {}", status(PR_ERR_PROVIDER_ERROR))
    );
    assert_eq!(fact("down.pull"), status(PR_ERR_PROVIDER_ERROR));
    assert_eq!(fact("pull_inside"), (PR_ERR_USAGE as i32).to_string());
    assert_eq!(
        fact("shutdown.push"),
        format!("1 {}", PR_ERR_SHUTDOWN as i32)
    );
    assert_eq!(fact("shutdown.pull"), (PR_ERR_SHUTDOWN as i32).to_string());

    // What reached the emulator: nothing from bad input, nothing for a
    // cached answer, every cancelled or freed stream closed before its end.
    assert_eq!(emulator.hits("/never/*"), 0, "bad input sent nothing");
    assert_eq!(
        emulator.hits("/stream/openai/*"),
        4,
        "push, pull, and the two of pull-inside-a-callback; the cached replay sent nothing"
    );
    assert_eq!(
        emulator.hits("/cut/openai/*"),
        3,
        "no retry after the first token"
    );
    assert_eq!(emulator.hits("/stream/mistral/*"), 1);
    let stalled = emulator.requests_to("/stall/*");
    assert_eq!(stalled.len(), 5, "cancel, stop, freed, and two shut down");
    assert!(stalled.iter().all(|r| r.closed_early), "{stalled:?}");

    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
}

#[test]
fn c_stream_test_program_passes_against_the_shared_and_the_static_library() {
    for library in [Library::Shared, Library::Static] {
        let emulator = stream_emulator();
        let program = build(
            "cc",
            &source("ffi/tests/c/stream_test.c"),
            &["-std=c11", "-Wall", "-Wextra", "-Werror"],
            library,
        );
        let run = run(&[], &program, &emulator, Duration::from_secs(60));
        eprintln!("{library:?}:\n{}", run.stdout);
        assert!(run.success, "{library:?}:\n{}\n{}", run.stdout, run.stderr);
        check_stream_facts(&run.stdout, &emulator);
    }
}

#[test]
fn c_stream_test_program_is_clean_under_valgrind() {
    let emulator = stream_emulator();
    assert_clean_under_valgrind(
        &source("ffi/tests/c/stream_test.c"),
        &emulator,
        check_stream_facts,
    );
}
