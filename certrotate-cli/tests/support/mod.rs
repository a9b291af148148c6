//! What every end-to-end test of the binary shares: running `certrotate` and checking that
//! no output carries private key material.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use assert_cmd::Command;

/// The binary under test, with logging and colour settings of the caller removed.
pub fn certrotate() -> Command {
    let mut cmd = Command::cargo_bin("certrotate").unwrap();
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// One finished run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary; panics if any output holds private key material (secret hygiene).
pub fn run(args: &[&str]) -> Run {
    let out = certrotate().args(args).output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for text in [&run.stdout, &run.stderr] {
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "private key material in output of {args:?}:\n{text}"
        );
    }
    run
}
