//! Obtain the mlx-c sources from the published `mlx-sys 0.7.0` crate at build time.
//!
//! A tiny manifest (its own workspace) depending on `mlx-sys = "=0.7.0"` is written to `OUT_DIR`;
//! `cargo fetch` downloads and unpacks it into cargo's registry cache (falling back to `--offline`
//! when the cache already has it), `cargo metadata` says where, and the checksum cargo recorded in
//! the lockfile must equal the pinned one. Nothing is copied into the repository.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const UPSTREAM_VERSION: &str = "0.7.0";
/// sha256 of `mlx-sys-0.7.0.crate` on crates.io.
const UPSTREAM_SHA256: &str = "da965f83ce211b80f9b681d9bbd6fa625fe6bb2e659ba7bc55dd95eea8d3b028";

/// Directory holding mlx-c's `CMakeLists.txt` and `mlx/c/*.h`.
pub fn mlx_c_sources(out: &Path) -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("MLX_C_SRC") {
        let dir = PathBuf::from(dir);
        return check_root(dir);
    }
    let dir = out.join("upstream-mlx-sys");
    fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    fs::write(dir.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"ollmlx-fetch-mlx-c\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nmlx-sys = {{ version = \"={UPSTREAM_VERSION}\", \
             default-features = false }}\n\n[workspace]\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let manifest = dir.join("Cargo.toml");

    let fetched = cargo(&manifest, &["fetch"]).or_else(|online| {
        cargo(&manifest, &["fetch", "--offline"]).map_err(|offline| {
            format!(
                "could not fetch the mlx-c sources (crate mlx-sys {UPSTREAM_VERSION} from \
                 crates.io).\nonline: {online}\noffline: {offline}\nEither allow cargo to reach \
                 crates.io once, or set MLX_C_SRC to an mlx-c 0.7.0 checkout."
            )
        })
    });
    fetched?;
    verify_checksum(&dir.join("Cargo.lock"))?;
    let meta = cargo(
        &manifest,
        &["metadata", "--format-version", "1", "--offline"],
    )?;
    let meta: serde_json::Value =
        serde_json::from_str(&meta).map_err(|e| format!("cargo metadata: {e}"))?;
    let pkg_manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "mlx-sys" && p["version"] == UPSTREAM_VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("cargo metadata does not list mlx-sys 0.7.0")?;
    let root = Path::new(pkg_manifest)
        .parent()
        .ok_or("bad manifest path")?
        .join("src/mlx-c");
    check_root(root)
}

fn check_root(root: PathBuf) -> Result<PathBuf, String> {
    if root.join("CMakeLists.txt").exists() && root.join("mlx/c/mlx.h").exists() {
        Ok(root)
    } else {
        Err(format!(
            "{} does not look like mlx-c 0.7.0 (no CMakeLists.txt / mlx/c/mlx.h)",
            root.display()
        ))
    }
}

fn verify_checksum(lock: &Path) -> Result<(), String> {
    let text = fs::read_to_string(lock).map_err(|e| format!("reading {}: {e}", lock.display()))?;
    let mut in_pkg = false;
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            in_pkg = false;
        } else if line == "name = \"mlx-sys\"" {
            in_pkg = true;
        } else if in_pkg {
            if let Some(sum) = line.strip_prefix("checksum = \"") {
                let sum = sum.trim_end_matches('"');
                return if sum == UPSTREAM_SHA256 {
                    Ok(())
                } else {
                    Err(format!(
                        "mlx-sys {UPSTREAM_VERSION} checksum {sum} != pinned {UPSTREAM_SHA256}"
                    ))
                };
            }
        }
    }
    Err(format!("no checksum for mlx-sys in {}", lock.display()))
}

/// Run the cargo that runs us, without the outer build's target-specific environment.
fn cargo(manifest: &Path, args: &[&str]) -> Result<String, String> {
    let bin = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--quiet");
    for (k, _) in env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let keep = k == "CARGO_HOME"
            || k.starts_with("CARGO_NET_")
            || k.starts_with("CARGO_HTTP_")
            || k.starts_with("CARGO_REGISTRIES_")
            || k.starts_with("CARGO_REGISTRY_");
        if (k.starts_with("CARGO_") && !keep) || k == "RUSTFLAGS" || k == "RUSTC_WRAPPER" {
            cmd.env_remove(&k);
        }
    }
    let out = cmd.output().map_err(|e| format!("running cargo: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "cargo {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
