//! The harness's command line, run as the real binary: a `--server-arg`
//! that would fight one of its own options is refused before it starts
//! anything. (Being an integration test also makes `cargo test --no-run`
//! build the binary, which `scripts/test.sh`'s one build relies on.)

use std::process::Command;

#[test]
fn server_args_that_fight_its_own_options_are_refused() {
    let log = std::env::temp_dir().join(format!("duplex-harness-cli-{}.log", std::process::id()));
    for (arg, own) in [
        ("--server-arg=--deflate", "--deflate on|off"),
        ("--server-arg=--redis=redis://127.0.0.1:1", "--redis"),
        ("--server-arg=--ui-dir", "--ui-dir"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_duplex-browser-harness"))
            .arg("--log")
            .arg(&log)
            .args([arg, "--", "true"])
            .output()
            .expect("run the harness");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arg}: accepted: {stderr}");
        assert!(
            stderr.contains(&format!("use the harness's own {own}")),
            "{arg}: {stderr}"
        );
    }
    let _ = std::fs::remove_file(&log);
}
