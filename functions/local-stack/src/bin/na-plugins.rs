//! `na-plugins`: the plugin registry from the command line, against PostgreSQL directly
//! (the same rules as the admin API: `POST /api/v2/admin/plugins` and friends).
//!
//! ```sh
//! scripts/build-plugins likes-metrics
//! na-plugins publish $NA_PLUGIN_DIR/likes-metrics.wasm --by you@example.com
//! na-plugins list
//! na-plugins recompute likes@2    # fills its buckets from the retained facts
//! na-plugins activate likes@2     # refused until it has been recomputed
//! na-plugins retire likes@1
//! ```
//! Exit status: 0 done, 1 refused by the registry, 2 bad input or an unusable component.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use na_compaction::{CompactionError, RecomputeProgress};
use na_plugin_registry::{PublishError, Registry};
use na_storage::{Db, PluginRecord, Published};

#[derive(Debug, Parser)]
#[command(
    name = "na-plugins",
    about = "Publish, list, recompute, activate, retire and release metric plugins"
)]
struct Args {
    /// PostgreSQL; the database is created when missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = na_storage::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate a WASM component (load, trial run) and store it as a shadow version.
    Publish {
        /// The component (scripts/build-plugins writes them to $NA_PLUGIN_DIR).
        file: PathBuf,
        /// Who publishes it (recorded with the version).
        #[arg(long)]
        by: String,
    },
    /// Every published version.
    List,
    /// Fill a shadow version's buckets from the retained facts (here, with progress; the
    /// admin API runs the same as a job), so it can be activated.
    Recompute {
        /// `name@version`.
        plugin: String,
    },
    /// Make a recomputed version active: the compactor and queries use it.
    Activate {
        /// `name@version`, e.g. `likes@2`.
        plugin: String,
    },
    /// Stop computing and serving a version.
    Retire {
        /// `name@version`.
        plugin: String,
    },
    /// Let a quarantined version run again (compaction retries its failed batch).
    Release {
        /// `name@version`.
        plugin: String,
    },
}

fn split(id: &str) -> anyhow::Result<(&str, i32)> {
    let (name, version) = id
        .split_once('@')
        .with_context(|| format!("{id:?}: expected name@version, e.g. likes@2"))?;
    let version = version
        .parse::<i32>()
        .ok()
        .filter(|v| *v > 0)
        .with_context(|| format!("{id:?}: the version must be a positive whole number"))?;
    Ok((name, version))
}

fn line(r: &PluginRecord) -> String {
    let metrics: Vec<&str> = r.description["metrics"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["id"].as_str()).collect())
        .unwrap_or_default();
    format!(
        "{}@{}\t{}\tsha256:{}\tby {} at {}\t{}",
        r.name,
        r.version,
        r.state,
        &r.content_hash[..16.min(r.content_hash.len())],
        r.published_by,
        r.published_at.format("%Y-%m-%d %H:%M:%SZ"),
        metrics.join(", ")
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("na-plugins: {e:#}");
            let refused = e
                .downcast_ref::<na_storage::Error>()
                .is_some_and(|e| matches!(e, na_storage::Error::Refused(_)))
                || e.downcast_ref::<CompactionError>()
                    .is_some_and(|e| matches!(e, CompactionError::Refused(_)));
            ExitCode::from(if refused { 1 } else { 2 })
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let db = Db::open(&args.database_url, 2).await?;
    let var = |name: &str| std::env::var(name).ok();
    let host = na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(&var))?;
    let registry = Registry::new(db.clone(), std::sync::Arc::new(host));
    match args.command {
        Cmd::Publish { file, by } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            match registry.publish(bytes, &by).await {
                Ok(Published::Created(r)) => println!("published {}", line(&r)),
                Ok(Published::Unchanged(r)) => {
                    println!("already published, unchanged: {}", line(&r))
                }
                Err(PublishError::Storage(e)) => return Err(e.into()),
                Err(e) => return Err(anyhow::anyhow!(e)),
            }
        }
        Cmd::List => {
            for r in registry.list().await? {
                println!("{}", line(&r));
            }
        }
        Cmd::Recompute { plugin } => {
            let (name, version) = split(&plugin)?;
            let compactor = na_compaction::Compactor::new(
                db,
                registry.host().clone(),
                na_compaction::CompactorConfig::default(),
            );
            let (tx, mut rx) = tokio::sync::watch::channel(RecomputeProgress::default());
            let label = plugin.clone();
            let printer = tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let p = rx.borrow_and_update().clone();
                    eprint!("\r{label}: {} / {} facts", p.facts_done, p.facts_total);
                }
                eprintln!();
            });
            let done = compactor.recompute(name, version, &tx).await;
            drop(tx);
            let _ = printer.await;
            match done {
                Ok(r) => println!(
                    "recomputed {}: {} facts, {} contributions in {:.1} s; it can be activated",
                    r.plugin, r.facts, r.contributions, r.seconds
                ),
                Err(e) => return Err(e.into()),
            }
        }
        Cmd::Activate { plugin } => {
            let (name, version) = split(&plugin)?;
            println!("{}", line(&registry.activate(name, version).await?));
        }
        Cmd::Retire { plugin } => {
            let (name, version) = split(&plugin)?;
            println!("{}", line(&registry.retire(name, version).await?));
        }
        Cmd::Release { plugin } => {
            let (name, version) = split(&plugin)?;
            let record = db.plugin(name, version).await?;
            let conn = db.conn().await?;
            if !na_storage::compaction_state::release(&**conn, name, version).await? {
                anyhow::bail!("{plugin} is not quarantined");
            }
            println!("released {}", line(&record));
        }
    }
    Ok(())
}
