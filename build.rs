//! Build-time provenance (`record::provenance`): the commit the binary is built from, whether
//! the sources that make it (src/, Cargo.toml, Cargo.lock, build.rs; untracked files included)
//! differ from that commit, and the compiler's version. Rerun when those sources or the checked
//! out commit change, so the facts never go stale.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    for p in ["build.rs", "src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={p}");
    }
    // The checked-out commit: HEAD, the branch it names and the packed refs.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        println!("cargo:rerun-if-changed={common}/packed-refs");
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{r}");
        }
    }
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--",
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
    ])
    .map_or("unknown".to_string(), |s| (!s.is_empty()).to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    shared_data();
    println!("cargo:rustc-env=ODM_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=ODM_BUILD_DIRTY={dirty}");
    println!("cargo:rustc-env=ODM_RUSTC_VERSION={version}");
}

/// Tests that need the shared benchmark data (`$ODM_DATA`, else `../shared/data`) are compiled
/// as ignored when it is missing (`cfg(odm_no_shared_data)`), so `cargo test` counts them on its
/// own summary line ("N ignored") instead of passing them silently. Under `CI=true` they stay
/// tests and fail, since CI must have the data.
fn shared_data() {
    println!("cargo:rustc-check-cfg=cfg(odm_no_shared_data)");
    println!("cargo:rerun-if-env-changed=ODM_DATA");
    println!("cargo:rerun-if-env-changed=CI");
    let root = std::env::var_os("ODM_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("../shared/data"));
    let bench = root.join("benchmark");
    if bench.is_dir() {
        println!("cargo:rerun-if-changed={}", bench.display());
    } else if std::env::var("CI").map_or(true, |v| v != "true") {
        println!("cargo:rustc-cfg=odm_no_shared_data");
    }
}
