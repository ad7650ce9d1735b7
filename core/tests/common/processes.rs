//! Tests across real OS processes: the test binary re-executes itself with
//! [`ROLE`] set, running only its `child_process` test, which plays that
//! role and prints one `RESULT <json>` line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The variable naming the role a child plays.
pub const ROLE: &str = "POLYRELAY_TEST_ROLE";

/// Starts this test binary as a child playing `role`, with `vars`.
pub fn spawn(role: &str, vars: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command
        .args([
            "child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env(ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in vars {
        command.env(name, value);
    }
    command.spawn().expect("child starts")
}

/// The `RESULT` line of a child (waits for it, not for the child's exit; the
/// rest of its output is drained so that it never writes to a closed pipe).
pub fn result_line(child: &mut Child) -> Value {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(result) = line.strip_prefix("RESULT ") {
                let _ = sender.send(result.to_string());
            }
        }
    });
    let line = receiver.recv().expect("child printed a RESULT line");
    serde_json::from_str(&line).expect("RESULT is JSON")
}

pub fn finish(mut child: Child) -> Value {
    let result = result_line(&mut child);
    assert!(child.wait().expect("child exits").success());
    result
}

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}
