//! `na-plugins`: write, build and test a metric plugin anywhere on disk, then publish and
//! roll it out in the registry, against the stack's PostgreSQL directly (the same rules as
//! the admin API: `POST /api/v2/admin/plugins` and friends). docs/plugin-guide.md walks it.
//!
//! ```sh
//! na-plugins new tips && cd tips        # a crate of its own, with fixtures and a test
//! na-plugins build .                    # target/plugin/tips.wasm
//! na-plugins test target/plugin/tips.wasm --events fixtures/events.jsonl --expect fixtures/expected.json
//! na-plugins publish target/plugin/tips.wasm --by you@example.com
//! na-plugins recompute tips@1           # fills its buckets from the retained facts
//! na-plugins activate tips@1            # refused until it has been recomputed
//! na-plugins list
//! na-plugins retire tips@1
//! ```
//! Exit status: 0 done, 1 refused by the registry or values that differ from `--expect`,
//! 2 bad input or an unusable component.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use na_compaction::{CompactionError, RecomputeProgress};
use na_plugin_registry::{PublishError, Registry};
use na_plugin_testing::scaffold;
use na_storage::{Db, PluginRecord, Published};

#[derive(Debug, Parser)]
#[command(
    name = "na-plugins",
    about = "Write, build and test metric plugins; publish, list, recompute, activate, retire and release them"
)]
struct Args {
    /// The stack's PostgreSQL (registry commands only). A database that does not exist is
    /// an error: this never creates one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = na_storage::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write a new plugin crate in ./NAME (or --dir): one metric, fixture events, a test
    /// of the built component, a README. It builds and passes its test as written.
    New {
        /// Crate and plugin name (lowercase letters, digits and -); its metric's is the same
        /// with _ for -.
        name: String,
        /// Where to write it (default: ./NAME). Must not exist, or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The nostr-analytics checkout the crate depends on (default: the one this
        /// binary was built from).
        #[arg(long, conflicts_with = "git")]
        core: Option<PathBuf>,
        /// Depend on nostr-analytics by git URL instead of a checkout.
        #[arg(long)]
        git: Option<String>,
    },
    /// Build the plugin crate at PATH, anywhere on disk, to a WASM component
    /// (PATH/target/plugin/<crate>.wasm).
    Build {
        /// The crate's directory.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Run a built component in the production host (fuel, memory cap, no imports) over
    /// signed events normalized by the product's rules; print each metric's total and its
    /// value per subject.
    Test(TestArgs),
    #[command(flatten)]
    Registry(RegistryCmd),
}

/// What the registry does: these commands, only, open the database.
#[derive(Debug, Subcommand)]
enum RegistryCmd {
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

/// Values that differ from the golden file (exit 1, like a refusal).
#[derive(Debug)]
struct Differs(usize);

impl std::fmt::Display for Differs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} values differ from the expected ones", self.0)
    }
}

impl std::error::Error for Differs {}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let done = match args.command {
        Cmd::New {
            name,
            dir,
            core,
            git,
        } => new(&name, dir, core, git),
        Cmd::Build { path } => build(&path),
        Cmd::Test(a) => test(&a),
        Cmd::Registry(command) => run(&args.database_url, command).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("na-plugins: {e:#}");
            let refused = e
                .downcast_ref::<na_storage::Error>()
                .is_some_and(|e| matches!(e, na_storage::Error::Refused(_)))
                || e.downcast_ref::<CompactionError>()
                    .is_some_and(|e| matches!(e, CompactionError::Refused(_)))
                || e.downcast_ref::<Differs>().is_some();
            ExitCode::from(if refused { 1 } else { 2 })
        }
    }
}

async fn run(database_url: &str, command: RegistryCmd) -> anyhow::Result<()> {
    let db = Db::open(database_url, 2).await?;
    let var = |name: &str| std::env::var(name).ok();
    let host = na_plugin_host::PluginHost::new(na_plugin_host::HostConfig::from_lookup(&var))?;
    let registry = Registry::new(db.clone(), std::sync::Arc::new(host));
    match command {
        RegistryCmd::Publish { file, by } => {
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
        RegistryCmd::List => {
            for r in registry.list().await? {
                println!("{}", line(&r));
            }
        }
        RegistryCmd::Recompute { plugin } => {
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
        RegistryCmd::Activate { plugin } => {
            let (name, version) = split(&plugin)?;
            println!("{}", line(&registry.activate(name, version).await?));
        }
        RegistryCmd::Retire { plugin } => {
            let (name, version) = split(&plugin)?;
            println!("{}", line(&registry.retire(name, version).await?));
        }
        RegistryCmd::Release { plugin } => {
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

fn new(
    name: &str,
    dir: Option<PathBuf>,
    core: Option<PathBuf>,
    git: Option<String>,
) -> anyhow::Result<()> {
    let source = match (git, core) {
        (Some(url), _) => scaffold::Source::Git(url),
        (None, Some(root)) => scaffold::Source::Checkout(std::path::absolute(root)?),
        (None, None) => {
            // This binary's checkout (functions/local-stack is two levels down).
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
            let root = root.canonicalize().with_context(|| {
                format!(
                    "{}: no checkout here; say where with --core",
                    root.display()
                )
            })?;
            scaffold::Source::Checkout(root)
        }
    };
    if let scaffold::Source::Checkout(root) = &source
        && !root.join("metrics-plugins/sdk/Cargo.toml").exists()
    {
        anyhow::bail!("{} is not a nostr-analytics checkout", root.display());
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let files = scaffold::new_crate(&dir, name, &source)?;
    println!("wrote {} ({} files)", dir.display(), files.len());
    println!(
        "next: cd {} && cargo test && na-plugins build .",
        dir.display()
    );
    Ok(())
}

fn build(path: &std::path::Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    for built in na_plugin_build::build(&na_plugin_build::Build::for_crate(path)?)? {
        println!("{built}");
    }
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The component (what `na-plugins build` wrote).
    component: PathBuf,
    /// Events, one NIP-01 JSON event per line, in arrival order.
    #[arg(long)]
    events: PathBuf,
    /// Golden values (a report's JSON): exit 1 where the run differs.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Write this run's values as the golden file.
    #[arg(long, conflicts_with = "expect")]
    write_expect: Option<PathBuf>,
    /// Print the report as JSON (the golden file's format).
    #[arg(long)]
    json: bool,
    /// Print every contribution too.
    #[arg(long)]
    contributions: bool,
    /// The clock (Unix seconds) for NIP-40 expiry and future-dated events (default: now).
    #[arg(long)]
    now: Option<i64>,
}

fn test(a: &TestArgs) -> anyhow::Result<()> {
    let plugin = na_plugin_testing::Component::load(&a.component)?;
    let now = a.now.unwrap_or_else(na_plugin_testing::now);
    let ingested = na_plugin_testing::ingest_file(&a.events, now)?;
    eprintln!(
        "{}: {} events, {} facts ({} refused, {} repeated)",
        a.events.display(),
        ingested.events,
        ingested.facts.len(),
        ingested.refused.len(),
        ingested.duplicates
    );
    for r in &ingested.refused {
        eprintln!("  line {}: refused: {}", r.line, r.reason);
    }
    let out = plugin.contributions(&ingested.facts)?;
    let report = na_plugin_testing::Report::new(plugin.info(), ingested.facts.len(), &out);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    if a.contributions {
        let metrics = &plugin.info().metrics;
        for c in out.iter() {
            let m = &metrics[usize::from(c.metric)];
            let dims: Vec<String> = c.dims().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{}@{}\t{}\tat {}\tvalue {}\tkey {}\t{}",
                m.name,
                m.version,
                hex::encode(c.subject),
                c.at,
                c.value,
                hex::encode(c.key),
                dims.join(" ")
            );
        }
    }
    if let Some(path) = &a.write_expect {
        report.save(path)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &a.expect {
        let expected = na_plugin_testing::Report::load(path)?;
        let differences = report.differences(&expected);
        for d in &differences {
            eprintln!("differs: {d}");
        }
        if !differences.is_empty() {
            return Err(Differs(differences.len()).into());
        }
        eprintln!("as expected ({})", path.display());
    }
    Ok(())
}
