//! `build-plugins`: this repository's plugin crates (every one under
//! `metrics-plugins/plugins/` and `test-plugins/`, or the ones named), or any plugin crate
//! on disk (`--path`), to WASM components (`na_plugin_build`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Build metric plugins to WASM components")]
struct Args {
    /// Plugin crates of this repository to build (default: every crate in
    /// metrics-plugins/plugins and metrics-plugins/test-plugins).
    crates: Vec<String>,
    /// A plugin crate anywhere on disk, in its own workspace or none, instead.
    #[arg(long, conflicts_with = "crates")]
    path: Option<PathBuf>,
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

fn main() -> Result<()> {
    let args = Args::parse();
    let build = match &args.path {
        Some(dir) => na_plugin_build::Build {
            out: args.out,
            target_dir: args.target_dir,
            ..na_plugin_build::Build::for_crate(dir)?
        },
        None => {
            let root = workspace_root()?;
            let packages = if args.crates.is_empty() {
                let mut all =
                    na_plugin_build::plugin_crates(&root.join("metrics-plugins/plugins"))?;
                all.extend(na_plugin_build::plugin_crates(
                    &root.join("metrics-plugins/test-plugins"),
                )?);
                all
            } else {
                args.crates
            };
            na_plugin_build::Build {
                manifest: root.join("Cargo.toml"),
                packages,
                target_dir: args.target_dir,
                out: args.out,
            }
        }
    };
    let started = std::time::Instant::now();
    let built = na_plugin_build::build(&build)?;
    for b in built {
        println!("{b}");
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
            d.join("metrics-plugins/sdk/wit/metrics@1.0.0/metric.wit")
                .exists()
        })
        .map(Path::to_path_buf)
        .with_context(|| format!("{} is not inside a nostr-analytics checkout", cwd.display()))
}
