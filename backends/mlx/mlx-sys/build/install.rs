//! Find MLX (`MLX_DIR`) or install the official wheel into a project cache.
//!
//! The wheel layout is `mlx/lib/libmlx.{so,dylib}`, `mlx/include`, `mlx/share/cmake/MLX`, and for
//! `mlx-cpu` a `mlx_cpu.libs/` directory with the bundled reference BLAS/LAPACK that `libmlx.so`
//! finds through its `$ORIGIN` rpath; `blas.rs` replaces that BLAS.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::MLX_VERSION;

/// Where MLX lives.
pub struct Mlx {
    /// Directory holding `MLXConfig.cmake`.
    pub cmake_dir: PathBuf,
    /// Directory holding `libmlx.so` / `libmlx.dylib`.
    pub lib_dir: PathBuf,
    /// Directories binaries need in their rpath.
    pub rpath: Vec<PathBuf>,
    /// `cpu`, `metal`, `cuda-13`, `cuda-12` or `custom` (from `MLX_DIR`).
    pub variant: String,
    /// The Linux CPU wheel's bundled libraries (`mlx_cpu.libs`), whose BLAS the build replaces
    /// (`blas.rs`).
    pub cpu_libs: Option<PathBuf>,
}

/// Locate or install MLX for this target.
pub fn locate_mlx(target_os: &str, _target_arch: &str) -> Result<Mlx, String> {
    if let Some(dir) = env::var_os("MLX_DIR") {
        return from_mlx_dir(PathBuf::from(dir));
    }
    let variant = match env::var("OLLMLX_MLX_VARIANT") {
        Ok(v) if !v.is_empty() => v,
        _ if target_os == "macos" => "metal".into(),
        _ if env::var_os("CARGO_FEATURE_CUDA").is_some() => "cuda-13".into(),
        _ => "cpu".into(),
    };
    let package = match variant.as_str() {
        "cpu" | "metal" | "cuda-13" | "cuda-12" => format!("mlx-{variant}=={MLX_VERSION}"),
        other => {
            return Err(format!(
                "OLLMLX_MLX_VARIANT={other} is not one of cpu, metal, cuda-13, cuda-12"
            ))
        }
    };
    let dest = cache_root()?.join(format!("mlx-{variant}-{MLX_VERSION}"));
    let cmake_dir = dest.join("mlx/share/cmake/MLX");
    if !cmake_dir.join("MLXConfig.cmake").exists() {
        // CUDA wheels need NVIDIA's runtime packages; the CPU and Metal wheels are self-contained.
        let with_deps = variant.starts_with("cuda");
        pip_install(&package, &dest, with_deps)?;
    }
    let lib_dir = dest.join("mlx/lib");
    let mut rpath = vec![lib_dir.clone()];
    if variant.starts_with("cuda") {
        // nvidia/<component>/lib from the pip dependencies.
        if let Ok(entries) = fs::read_dir(dest.join("nvidia")) {
            let mut dirs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("lib"))
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            rpath.extend(dirs);
        }
    }
    let cpu_libs = (target_os == "linux" && variant == "cpu").then(|| dest.join("mlx_cpu.libs"));
    Ok(Mlx {
        cmake_dir,
        lib_dir,
        rpath,
        variant,
        cpu_libs,
    })
}

fn from_mlx_dir(cmake_dir: PathBuf) -> Result<Mlx, String> {
    if !cmake_dir.join("MLXConfig.cmake").exists() {
        return Err(format!(
            "MLX_DIR={} does not contain MLXConfig.cmake (it must be the directory \
             <prefix>/share/cmake/MLX of an MLX {MLX_VERSION} install)",
            cmake_dir.display()
        ));
    }
    let prefix = cmake_dir.join("../../..");
    let lib_dir = env::var_os("MLX_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| prefix.join("lib"));
    let lib_dir = lib_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", lib_dir.display()))?;
    Ok(Mlx {
        cmake_dir,
        rpath: vec![lib_dir.clone()],
        lib_dir,
        variant: "custom".into(),
        cpu_libs: None,
    })
}

fn cache_root() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("OLLMLX_MLX_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("ollmlx"));
    }
    env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/ollmlx"))
        .ok_or_else(|| {
            "neither OLLMLX_MLX_CACHE nor HOME is set; set MLX_DIR or OLLMLX_MLX_CACHE".into()
        })
}

fn pip_install(package: &str, dest: &Path, with_deps: bool) -> Result<(), String> {
    let python = find_python().ok_or_else(|| {
        format!(
            "MLX is needed and MLX_DIR is not set, so the build installs the wheel {package} with \
             pip, but no python3 with pip was found.\nInstall one (Debian/Ubuntu: apt-get install -y \
             python3 python3-pip) or set PYTHON=/path/to/python3, or point MLX_DIR at an existing \
             MLX {MLX_VERSION} install (<prefix>/share/cmake/MLX)."
        )
    })?;
    let parent = dest.parent().ok_or("bad cache dir")?;
    fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let tmp = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        package.replace('=', "")
    ));
    let _ = fs::remove_dir_all(&tmp);
    let mut cmd = Command::new(&python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ])
    .arg("--target")
    .arg(&tmp)
    .arg(package);
    if !with_deps {
        cmd.arg("--no-deps");
    }
    eprintln!("mlx-sys: installing {package} into {}", dest.display());
    let out = cmd
        .output()
        .map_err(|e| format!("running {python} -m pip: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(format!(
            "`{python} -m pip install --target {} {package}` failed:\n{}\nAllow pip to reach PyPI \
             once, or set MLX_DIR to an MLX {MLX_VERSION} install.",
            tmp.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let _ = fs::remove_dir_all(dest);
    fs::rename(&tmp, dest)
        .map_err(|e| format!("moving {} to {}: {e}", tmp.display(), dest.display()))
}

fn find_python() -> Option<String> {
    let candidates = env::var("PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".into(), "python".into()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}
