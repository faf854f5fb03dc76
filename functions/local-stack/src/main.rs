//! `nostr-analytics`: the whole product in one process against local PostgreSQL — the
//! HTTP gateway, scheduled ingest, the job worker with an in-process queue — plus, when no
//! relay is given, a loopback demo relay seeded with generated, properly signed data.

mod demo;
mod slo;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jobs::JobsState;
use na_ingest::IngestConfig;
use na_queue::InProcessQueue;
use na_storage::Db;
use query::{AccessConfig, AdminAccess, AppState};
use tokio::sync::watch;
use tracing::{error, info};

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "nostr-analytics",
    about = "Run the nostr-analytics stack locally in one process"
)]
struct Args {
    /// Relay to ingest from (repeatable). Without one, a demo relay with generated data runs on loopback.
    #[arg(long = "relay", value_name = "URL")]
    relays: Vec<String>,
    /// Where the HTTP gateway listens.
    #[arg(long, env = "NA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PostgreSQL; the database is created when missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = na_storage::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Seed of the demo dataset.
    #[arg(long, default_value_t = 42)]
    demo_seed: u64,
    /// Enqueue a backfill of this pubkey (hex or npub) at start (repeatable).
    #[arg(long = "backfill", value_name = "PUBKEY")]
    backfills: Vec<String>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    run_for: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring the database to this build's schema: the deploy's migrate step. Runs one at a
    /// time across processes (a second run waits, then finds nothing to do). Then exits.
    Migrate {
        /// Create the database when it does not exist (else a missing one is an error).
        #[arg(long)]
        create_database: bool,
    },
    /// Read each SLO from a running stack's `/metrics` (as the deployed alarms read them)
    /// and print where it stands; fails when one is not met.
    Slo {
        /// The stack's gateway.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a file of events, one JSON object per line (a relay dump, as `strfry export`
    /// writes), through the same verification and normalization as relay ingest. An
    /// interrupted import resumes where it stopped. Then exits.
    Import {
        /// The file (`.jsonl`).
        file: std::path::PathBuf,
        /// Events per write transaction.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
    },
}

/// The stack's settings besides its flags: read from the environment once, at start (the
/// README lists every variable).
struct Config {
    log: na_telemetry::LogSettings,
    ingest: IngestConfig,
    host: na_plugin_host::HostConfig,
    compactor: na_compaction::CompactorConfig,
    policy: query::QueryPolicy,
    jobs: jobs::JobSettings,
    retention: retention::RetentionConfig,
    /// Admin routes are open on the stack's loopback gateway, unless `ADMIN_TOKEN` asks for
    /// them to be guarded as deployed; NIP-98 events name `NA_PUBLIC_URL`, else the
    /// gateway's own address.
    access: AccessConfig,
    /// `NA_PLUGIN_DIR`: where `scripts/build-plugins` put the built-in plugin.
    plugin_dir: std::path::PathBuf,
    /// `NA_DASHBOARD_DIR`: the built dashboard (`scripts/build-clients`), served at `/`.
    dashboard: Option<std::path::PathBuf>,
}

impl Config {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok();
        Ok(Config {
            log: na_telemetry::LogSettings::from_lookup(&var),
            ingest: IngestConfig::from_lookup(var)?,
            host: na_plugin_host::HostConfig::from_lookup(&var),
            compactor: na_compaction::CompactorConfig::from_lookup(&var)?,
            policy: query::QueryPolicy::from_lookup(&var).map_err(anyhow::Error::msg)?,
            jobs: jobs::JobSettings::from_lookup(&var)?,
            retention: retention::RetentionConfig::from_lookup(&var)?,
            access: match AccessConfig::from_lookup(&var).map_err(anyhow::Error::msg)? {
                AccessConfig {
                    admin: AdminAccess::KeysOnly,
                    public_url,
                    rate,
                    cors,
                } => AccessConfig {
                    rate,
                    cors,
                    ..AccessConfig::open(public_url)
                },
                guarded => guarded,
            },
            dashboard: query::dashboard::dir_from_lookup(&var).map_err(anyhow::Error::msg)?,
            plugin_dir: var("NA_PLUGIN_DIR").map_or_else(
                || na_plugin_host::DEFAULT_PLUGIN_DIR.into(),
                std::path::PathBuf::from,
            ),
        })
    }
}

/// `nostr-analytics migrate`: what it applied, and the schema's version, on stdout.
async fn migrate(url: &str, create_database: bool) -> anyhow::Result<()> {
    let create = if create_database {
        na_storage::CreateDatabase::IfMissing
    } else {
        na_storage::CreateDatabase::Never
    };
    let done = na_storage::migrate(url, create)
        .await
        .with_context(|| format!("migrating {}", redact(url)))?;
    let applied: Vec<String> = done.applied.iter().map(|v| format!("V{v}")).collect();
    println!(
        "schema at V{}; applied now: {}",
        done.version,
        if applied.is_empty() {
            "none".to_owned()
        } else {
            applied.join(", ")
        }
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    na_telemetry::init(&config.log);
    let args = Args::parse();
    match &args.command {
        Some(Command::Migrate { create_database }) => {
            return migrate(&args.database_url, *create_database).await;
        }
        Some(Command::Slo { url, json }) => return slo::check(url, *json).await,
        _ => {}
    }
    let prometheus = na_telemetry::Prometheus::install().map_err(anyhow::Error::msg)?;
    let db = Db::connect(&args.database_url, 8).await.with_context(|| {
        format!(
            "PostgreSQL is needed at {} (set DATABASE_URL or --database-url)",
            redact(&args.database_url)
        )
    })?;

    let mut cfg = config.ingest.clone();
    if let Some(Command::Import { file, batch }) = &args.command {
        return import(&db, file, *batch, cfg.lnurl.as_ref()).await;
    }
    let (stop_tx, stop) = watch::channel(false);
    let mut demo_relay = None;
    if args.relays.is_empty() && cfg.relays.is_empty() {
        let demo = demo::start(&db, args.demo_seed, stop.clone()).await?;
        cfg.relays = vec![demo.url.clone()];
        // The demo relay holds only generated data: take all of it.
        cfg.lookback = None;
        demo_relay = Some(demo);
    } else if !args.relays.is_empty() {
        cfg.relays = args.relays.clone();
    }

    let (queue, receiver) = InProcessQueue::new(3);
    let queue = Arc::new(queue);
    let host = Arc::new(na_plugin_host::PluginHost::new(config.host)?);
    // The gateway's own pool, its statements bounded as the query function's are.
    let request_db = query::connect_db(&args.database_url, 4).await?;
    let registry = na_plugin_registry::Registry::new(request_db.clone(), host.clone());
    let compactor = Arc::new(na_compaction::Compactor::new(
        db.clone(),
        host,
        config.compactor,
    ));
    let builtin = publish_builtin(&registry, &compactor, &config.plugin_dir).await;
    let access = AccessConfig {
        public_url: config
            .access
            .public_url
            .or_else(|| Some(format!("http://{}", args.listen))),
        ..config.access
    };
    let state = AppState::new(request_db, queue.clone(), access, registry)
        .with_policy(config.policy)
        .with_dashboard(config.dashboard.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {} (use --listen)", args.listen))?;
    // What a Prometheus server scrapes (and `nostr-analytics slo` reads), beside the API.
    let app = query::app(state).route(
        "/metrics",
        axum::routing::get(move || async move {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                prometheus.render(),
            )
        })
        .fallback(query::guards::method_not_allowed),
    );

    let jobs_state = JobsState::new(
        db.clone(),
        jobs::JobSettings {
            ingest: cfg.clone(),
            ..config.jobs
        },
        compactor.clone(),
    );
    let worker = tokio::spawn(jobs::run_in_process(jobs_state, receiver));
    let ingest_loop = tokio::spawn(ingest_forever(db.clone(), cfg.clone(), stop.clone()));
    let compaction_loop = tokio::spawn(compact_forever(compactor, config.retention, stop.clone()));
    for pubkey in &args.backfills {
        let pk =
            nostr_sdk::PublicKey::parse(pubkey).with_context(|| format!("--backfill {pubkey}"))?;
        let id = query::enqueue_backfill(&db, queue.as_ref(), &pk.to_hex(), None)
            .await
            .map_err(|e| anyhow::anyhow!("enqueue backfill: {e:?}"))?;
        println!(
            "backfill of {pubkey} enqueued: http://{}/api/v2/admin/jobs/{id}",
            args.listen
        );
    }

    println!("nostr-analytics local stack");
    println!("  gateway        http://{}", args.listen);
    println!("  health         http://{}/health", args.listen);
    println!(
        "  metrics        http://{}/metrics (SLOs: nostr-analytics slo --url http://{})",
        args.listen, args.listen
    );
    println!(
        "  ingest status  http://{}/api/v2/analytics/status",
        args.listen
    );
    println!("  relays         {}", cfg.relays.join(", "));
    println!(
        "  compaction     every {} s, retention hourly (lag: http://{}/api/v2/analytics/status)",
        COMPACT_EVERY.as_secs(),
        args.listen
    );
    println!(
        "  plugins        {builtin} (http://{}/api/v2/admin/plugins)",
        args.listen
    );
    match (&config.dashboard, &demo_relay) {
        (Some(_), Some(demo)) => println!(
            "  dashboard      http://{}/u/{}",
            args.listen, demo.target_npub
        ),
        (Some(_), None) => println!("  dashboard      http://{}/", args.listen),
        (None, _) => {
            println!("  dashboard      not served (NA_DASHBOARD_DIR; scripts/stack builds it)")
        }
    }
    if let Some(demo) = &demo_relay {
        println!(
            "  demo data      {} events about {} (seed {})",
            demo.events, demo.target_npub, args.demo_seed
        );
        println!(
            "  analytics      http://{}/api/v2/analytics/users/{}/summary?window=30d",
            args.listen, demo.target_npub
        );
        if let Some(note) = &demo.busiest_note {
            println!(
                "  a note         http://{}/api/v2/analytics/notes/{note}",
                args.listen
            );
        }
    }
    println!(
        "  API document   http://{}/api/v2/analytics/openapi.json",
        args.listen
    );

    let mut shutdown = stop.clone();
    let run_for = args.run_for;
    tokio::spawn(async move {
        match run_for {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        info!("shutting down");
        let _ = stop_tx.send(true);
    });
    // The peer's address is the anonymous caller's rate-limit bucket.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = shutdown.wait_for(|s| *s).await;
    })
    .await?;
    ingest_loop.await?;
    compaction_loop.await?;
    drop(queue);
    worker.abort();
    Ok(())
}

/// `nostr-analytics import FILE`: progress on stderr about once a second, the report on
/// stdout as JSON.
async fn import(
    db: &Db,
    file: &std::path::Path,
    batch: usize,
    lnurl: Option<&na_lnurl::CachedResolver>,
) -> anyhow::Result<()> {
    let mut shown = std::time::Instant::now();
    let report = na_ingest::import::import_file(db, file, batch.max(1), lnurl, |r| {
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = std::time::Instant::now();
            eprintln!(
                "{}: {} lines ({} accepted, {} duplicate, {} rejected) in {:.0} s",
                r.source,
                r.resumed_at_line + r.lines,
                r.accepted,
                r.duplicate,
                r.bad_id + r.bad_signature + r.future + r.malformed,
                r.seconds
            );
        }
    })
    .await
    .with_context(|| format!("import {}", file.display()))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Back-to-back ingest runs (each as long as a Lambda run) until shutdown.
async fn ingest_forever(db: Db, cfg: IngestConfig, stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let mut stop_now = stop.clone();
        let until = async move {
            tokio::select! {
                () = tokio::time::sleep(cfg.run_for) => {}
                _ = stop_now.wait_for(|s| *s) => {}
            }
        };
        match na_ingest::live::run_until(&db, &cfg, until).await {
            Ok(report) => info!(stored = report.stats.stored, "ingest run ended"),
            Err(e) => {
                error!(error = %e, "ingest run failed; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// How often the local stack compacts (a schedule of its own, like the Lambda's).
const COMPACT_EVERY: Duration = Duration::from_secs(5);
/// Retention runs every hour of compaction runs.
const RETAIN_EVERY_RUNS: u64 = 720;

/// Compaction runs on a schedule until shutdown, and retention every
/// [`RETAIN_EVERY_RUNS`] runs.
async fn compact_forever(
    compactor: Arc<na_compaction::Compactor>,
    retention: retention::RetentionConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut runs = 0u64;
    while !*stop.borrow() {
        if runs.is_multiple_of(RETAIN_EVERY_RUNS) {
            let db = compactor.db();
            if let Err(e) = retention::run(db, &retention, chrono::Utc::now(), None).await {
                error!(error = %e, "retention run failed; retrying later");
            }
        }
        runs += 1;
        match compactor.run(None).await {
            Ok(run) if run.rows > 0 => {
                info!(rows = run.rows, batches = run.batches, "compacted");
            }
            Ok(_) => {}
            Err(e) => error!(error = %e, "compaction run failed; retrying"),
        }
        tokio::select! {
            () = tokio::time::sleep(COMPACT_EVERY) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

/// Publishes the built-in catalog (`core-metrics.wasm` from `NA_PLUGIN_DIR`, built by
/// `scripts/build-plugins`), recomputes and activates it the first time, and says how that
/// went. Missing plugins do not stop the stack.
async fn publish_builtin(
    registry: &na_plugin_registry::Registry,
    compactor: &na_compaction::Compactor,
    plugin_dir: &std::path::Path,
) -> String {
    let bytes = match na_plugin_host::read_built_component(plugin_dir, "core-metrics") {
        Ok(bytes) => bytes,
        Err(missing) => return format!("none: {missing}"),
    };
    let record = match registry.publish(bytes, "built-in").await {
        Ok(na_storage::Published::Created(r) | na_storage::Published::Unchanged(r)) => r,
        Err(e) => {
            error!(error = %e, "the built-in plugin was not published");
            return format!("none: {e}");
        }
    };
    let (name, version) = (record.name.clone(), record.version);
    if record.state == "shadow" {
        let (progress, _) = watch::channel(na_compaction::RecomputeProgress::default());
        let activated = async {
            if record.recomputed_at.is_none() {
                compactor.recompute(&name, version, &progress).await?;
            }
            registry.activate(&name, version).await?;
            anyhow::Ok(())
        };
        if let Err(e) = activated.await {
            error!(error = %e, "the built-in plugin was not activated");
            return format!("{name}@{version} (shadow: {e})");
        }
        return format!("{name}@{version} (active)");
    }
    format!("{name}@{version} ({})", record.state)
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
