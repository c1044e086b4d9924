//! The fuzz targets (fuzz/, cargo-fuzz) run for a short, fixed time each, so every test
//! run exercises the decoders and parsers with a coverage-guided fuzzer. cargo-fuzz is
//! taken from PATH, or installed into target/tools by this test (crates.io); fuzzing needs
//! a nightly flag, which RUSTC_BOOTSTRAP gives the stable toolchain. docs/FUZZING.md says
//! how to run the targets for longer. Findings become regression tests (protocol/tests/
//! wire.rs, `fuzz_findings`).

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 5] = ["frames", "messages", "tickets", "sql_filter", "workload"];
/// Seconds each target runs.
const SECONDS: u32 = 10;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A PATH on which `cargo fuzz` works, installing cargo-fuzz into target/tools if needed.
fn path_with_cargo_fuzz() -> String {
    let tools = root().join("target").join("tools");
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let works = |path: &str| {
        Command::new("cargo")
            .args(["fuzz", "--version"])
            .env("PATH", path)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(&path) {
        let status = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked", "--root"])
            .arg(&tools)
            .status()
            .expect("running cargo install");
        assert!(
            status.success(),
            "installing cargo-fuzz into {}",
            tools.display()
        );
        assert!(works(&path), "cargo fuzz works after installing it");
    }
    path
}

fn fuzz(path: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("cargo")
        .arg("fuzz")
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("RUSTC_BOOTSTRAP", "1")
        .output()
        .expect("running cargo fuzz")
}

#[test]
fn every_fuzz_target_runs_clean_for_a_while() {
    let path = path_with_cargo_fuzz();
    let dir = root();
    let built = fuzz(&path, &dir, &["build", "--sanitizer", "none"]);
    assert!(
        built.status.success(),
        "building the fuzz targets: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    for target in TARGETS {
        let time = format!("-max_total_time={SECONDS}");
        let out = fuzz(
            &path,
            &dir,
            &["run", "--sanitizer", "none", target, "--", &time],
        );
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "fuzz target {target} found a failure (its input is under fuzz/artifacts/{target}):\n{}",
            log.lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(log.contains("Done"), "{target} ran to its time limit");
    }
}
