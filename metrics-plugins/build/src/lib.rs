//! Metric plugin crates to WASM components: the one build that `scripts/build-plugins`,
//! `na-plugins build PATH` and the test harness share.
//!
//! The guest must be `wasm32-unknown-unknown` (a WASI std imports what the sandbox refuses).
//! Where rustup has that target, the ordinary cargo builds it. Otherwise Debian's `rustc-web`
//! and `rust-web-src` build std for wasm themselves (`-Zbuild-std`); they are installed when
//! missing. The core module then becomes a component with `wit-component`. A crate is built
//! in place, inside this repository's workspace or in its own, anywhere on disk.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::Digest;

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "plugin";
const DEBIAN_PACKAGES: [&str; 3] = ["rustc-web", "cargo-web", "rust-web-src"];

/// The `plugin` profile (small and fast, no unwinding), given on the command line so that a
/// crate outside this workspace, which has no such profile, builds the same way.
const PROFILE_SETTINGS: [&str; 6] = [
    "profile.plugin.inherits=\"release\"",
    "profile.plugin.debug=false",
    "profile.plugin.lto=true",
    "profile.plugin.codegen-units=1",
    "profile.plugin.panic=\"abort\"",
    "profile.plugin.opt-level=3",
];

/// What to build: plugin packages of the Cargo workspace at `manifest`.
#[derive(Debug, Clone)]
pub struct Build {
    /// The `Cargo.toml` of the workspace (or lone crate) that holds the packages.
    pub manifest: PathBuf,
    /// Package names.
    pub packages: Vec<String>,
    /// Cargo's target directory for the wasm builds (keep it: std for wasm is built once).
    pub target_dir: PathBuf,
    /// Where the components go, as `<package>.wasm`.
    pub out: PathBuf,
}

impl Build {
    /// The plugin crate at `dir`, anywhere on disk, built as it stands (in its own workspace
    /// or none): wasm objects in `$NA_PLUGIN_TARGET_DIR` when set (shared, so std for wasm
    /// is built once per machine), else `DIR/target/wasm`; the component in
    /// `DIR/target/plugin/<package>.wasm`.
    ///
    /// # Errors
    /// As [`package_in`].
    pub fn for_crate(dir: &Path) -> Result<Self> {
        let dir = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
        let package = package_in(&dir)?;
        let target_dir = std::env::var_os("NA_PLUGIN_TARGET_DIR")
            .map_or_else(|| dir.join("target/wasm"), PathBuf::from);
        Ok(Build {
            manifest: dir.join("Cargo.toml"),
            packages: vec![package],
            target_dir,
            out: dir.join("target/plugin"),
        })
    }
}

/// A component written by [`build`].
#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub path: PathBuf,
    pub bytes: usize,
    pub sha256: String,
}

impl std::fmt::Display for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} bytes, sha256 {})",
            self.path.display(),
            self.bytes,
            &self.sha256[..16]
        )
    }
}

/// Builds the packages to components (progress on stderr).
///
/// # Errors
/// No usable toolchain, a failed cargo build, or a module that is not a plugin.
pub fn build(b: &Build) -> Result<Vec<Built>> {
    if b.packages.is_empty() {
        bail!("no plugin crates to build");
    }
    let toolchain = Toolchain::detect()?;
    eprintln!(
        "building {} with {}",
        b.packages.join(", "),
        toolchain.describe()
    );
    toolchain.cargo_build(b)?;
    std::fs::create_dir_all(&b.out).with_context(|| format!("creating {}", b.out.display()))?;
    b.packages
        .iter()
        .map(|name| componentize(b, name))
        .collect()
}

fn componentize(b: &Build, name: &str) -> Result<Built> {
    let module_path = b
        .target_dir
        .join(TARGET)
        .join(PROFILE)
        .join(format!("{}.wasm", name.replace('-', "_")));
    let module = std::fs::read(&module_path)
        .with_context(|| format!("reading {}", module_path.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .with_context(|| {
            format!("{name}: not a plugin module (does it call na_metrics_sdk::export_plugin!?)")
        })?
        .validate(true)
        .encode()
        .with_context(|| format!("{name}: encoding the component"))?;
    let path = b.out.join(format!("{name}.wasm"));
    std::fs::write(&path, &component).with_context(|| format!("writing {}", path.display()))?;
    Ok(Built {
        package: name.to_owned(),
        path,
        bytes: component.len(),
        sha256: hex::encode(sha2::Sha256::digest(&component)),
    })
}

/// The package name in the crate manifest at `dir/Cargo.toml`, which must build a `cdylib`
/// (the component is made of it).
///
/// # Errors
/// No manifest, not TOML, no package name, or no `cdylib`.
pub fn package_in(dir: &Path) -> Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not a Cargo manifest", manifest.display()))?;
    let name = table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{}: no package name", manifest.display()))?;
    let cdylib = table
        .get("lib")
        .and_then(|l| l.get("crate-type"))
        .and_then(toml::Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
    if !cdylib {
        bail!(
            "{}: a plugin crate needs crate-type = [\"cdylib\", \"rlib\"] in [lib]",
            manifest.display()
        );
    }
    Ok(name.to_owned())
}

/// Package names of the crates in `dir` (each subdirectory with a Cargo.toml).
///
/// # Errors
/// `dir` cannot be read, or a crate in it has no package name.
pub fn plugin_crates(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("Cargo.toml").exists() {
            names.push(package_in(&path)?);
        }
    }
    names.sort();
    Ok(names)
}

enum Toolchain {
    /// rustup with the wasm32 std installed.
    Rustup,
    /// Debian's rustc-web building std from source, linked by rustup's rust-lld.
    DebianBuildStd { lld: PathBuf },
}

impl Toolchain {
    fn detect() -> Result<Self> {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(TARGET))
            .unwrap_or(false);
        if installed {
            return Ok(Toolchain::Rustup);
        }
        ensure_debian_packages()?;
        let sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .context("running rustc (rustup's toolchain links the plugins)")?;
        let lld = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
            .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld");
        if !lld.exists() {
            bail!(
                "{} is missing: the rustup toolchain's rust-lld links the plugins",
                lld.display()
            );
        }
        Ok(Toolchain::DebianBuildStd { lld })
    }

    fn describe(&self) -> String {
        match self {
            Toolchain::Rustup => format!("rustup's {TARGET} target"),
            Toolchain::DebianBuildStd { .. } => "Debian's rustc-web with -Zbuild-std".into(),
        }
    }

    fn cargo_build(&self, b: &Build) -> Result<()> {
        let mut cmd = match self {
            Toolchain::Rustup => Command::new("cargo"),
            Toolchain::DebianBuildStd { lld } => {
                let mut c = Command::new("/usr/bin/cargo");
                // These flags are part of std's build: keep them fixed, or std rebuilds.
                c.env("RUSTC", "/usr/bin/rustc")
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env(
                        "RUSTFLAGS",
                        format!(
                            "-C linker={} -Zunstable-options -Cpanic=immediate-abort",
                            lld.display()
                        ),
                    )
                    .env(
                        "PATH",
                        format!("/usr/bin:{}", std::env::var("PATH").unwrap_or_default()),
                    );
                c.arg("-Zbuild-std=std,panic_abort");
                c
            }
        };
        // Run from the crate's own directory: cargo reads that tree's config, not ours.
        if let Some(dir) = b.manifest.parent().filter(|d| !d.as_os_str().is_empty()) {
            cmd.current_dir(dir);
        }
        cmd.env("CARGO_TARGET_DIR", &b.target_dir)
            // A host build's flags (coverage, a target CPU) do not apply to the guest.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .arg("build")
            .arg("--manifest-path")
            .arg(&b.manifest);
        for setting in PROFILE_SETTINGS {
            cmd.args(["--config", setting]);
        }
        cmd.args(["--profile", PROFILE, "--target", TARGET]);
        for p in &b.packages {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().context("running cargo for the plugins")?;
        if !status.success() {
            bail!("the plugin build failed ({status})");
        }
        Ok(())
    }
}

/// Installs Debian's wasm-capable rustc and std source when they are missing.
fn ensure_debian_packages() -> Result<()> {
    let have_src = Command::new("/usr/bin/rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|s| s.join("lib/rustlib/src/rust/library").exists());
    if have_src && Path::new("/usr/bin/cargo").exists() {
        return Ok(());
    }
    eprintln!(
        "installing {} (no wasm32 target in rustup)",
        DEBIAN_PACKAGES.join(" ")
    );
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(DEBIAN_PACKAGES)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")
    };
    let mut status = install()?;
    if !status.success() {
        // Stale package lists on a fresh machine: refresh them once and try again.
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        status = install()?;
    }
    if !status.success() {
        bail!(
            "apt-get install {} failed; install them (as root), or add rustup's {TARGET} target",
            DEBIAN_PACKAGES.join(" ")
        );
    }
    Ok(())
}
