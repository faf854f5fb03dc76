//! `build-plugins`: every crate under `metrics-plugins/plugins/` (or the ones named) to a
//! WASM component in the plugin directory, as `<crate>.wasm`.
//!
//! The guest must be `wasm32-unknown-unknown` (a WASI std imports what the sandbox refuses).
//! Where rustup has that target, the ordinary cargo builds it. Otherwise Debian's `rustc-web`
//! and `rust-web-src` build std for wasm themselves (`-Zbuild-std`); they are installed when
//! missing. The core module then becomes a component with `wit-component`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;
use sha2::Digest;

#[derive(Parser, Debug)]
#[command(about = "Build metric plugins to WASM components")]
struct Args {
    /// Plugin crates to build (default: every crate in metrics-plugins/plugins and
    /// metrics-plugins/test-plugins).
    crates: Vec<String>,
    /// Where the components go.
    #[arg(
        long,
        env = "NA_PLUGIN_DIR",
        default_value = "/var/cache/nostr-analytics/plugins"
    )]
    out: PathBuf,
    /// Cargo target directory for the wasm builds (kept apart from the host's).
    #[arg(
        long,
        env = "NA_PLUGIN_TARGET_DIR",
        default_value = "/var/cache/nostr-analytics/plugins-target"
    )]
    target_dir: PathBuf,
}

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "plugin";
const DEBIAN_PACKAGES: [&str; 3] = ["rustc-web", "cargo-web", "rust-web-src"];

fn main() -> Result<()> {
    let args = Args::parse();
    let root = workspace_root()?;
    let crates = if args.crates.is_empty() {
        let mut all = plugin_crates(&root.join("metrics-plugins/plugins"))?;
        all.extend(plugin_crates(&root.join("metrics-plugins/test-plugins"))?);
        all
    } else {
        args.crates.clone()
    };
    if crates.is_empty() {
        bail!("no plugin crates found in metrics-plugins/plugins");
    }
    let toolchain = Toolchain::detect()?;
    eprintln!(
        "building {} with {}",
        crates.join(", "),
        toolchain.describe()
    );
    let started = std::time::Instant::now();
    toolchain.build(&root, &args.target_dir, &crates)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for name in &crates {
        let module_path = args
            .target_dir
            .join(TARGET)
            .join(PROFILE)
            .join(format!("{}.wasm", name.replace('-', "_")));
        let module = std::fs::read(&module_path)
            .with_context(|| format!("reading {}", module_path.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .with_context(|| format!("{name}: not a plugin module (did it call export_plugin!?)"))?
            .validate(true)
            .encode()
            .with_context(|| format!("{name}: encoding the component"))?;
        let out = args.out.join(format!("{name}.wasm"));
        std::fs::write(&out, &component).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "{} ({} bytes, sha256 {})",
            out.display(),
            component.len(),
            &hex::encode(sha2::Sha256::digest(&component))[..16]
        );
    }
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The checkout to build: the nearest directory at or above the current one that holds
/// the plugin contract. (Not this crate's own path: a target directory shared by several
/// checkouts may hand one checkout's binary to another.)
fn workspace_root() -> Result<PathBuf> {
    let cwd = std::env::current_dir()?;
    cwd.ancestors()
        .find(|d| {
            d.join("metrics-plugins/wit/metrics@1.0.0/metric.wit")
                .exists()
        })
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not inside a nostr-analytics checkout", cwd.display()))
}

/// Package names of the crates in `dir` (each subdirectory with a Cargo.toml).
fn plugin_crates(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let manifest = entry?.path().join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let name = text
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("name = ")
                        .map(|v| v.trim_matches('"').to_owned())
                })
                .with_context(|| format!("{}: no package name", manifest.display()))?;
            names.push(name);
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
            .output()?;
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

    fn build(&self, root: &Path, target_dir: &Path, crates: &[String]) -> Result<()> {
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
        cmd.current_dir(root)
            .env("CARGO_TARGET_DIR", target_dir)
            .args(["build", "--profile", PROFILE, "--target", TARGET]);
        for c in crates {
            cmd.args(["-p", c]);
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
