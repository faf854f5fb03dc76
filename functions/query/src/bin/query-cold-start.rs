//! The query function's cold start, measured: from process start to its first answered
//! request. `query-cold-start --pubkey <hex|npub> [--runs 20]` starts itself `--runs`
//! times; each child builds the app as the function's `main` does (`app_from_config`, from
//! the same environment: `DATABASE_URL` of a migrated database with its plugins published,
//! `NA_PLUGIN_CACHE` holding their precompiled artifacts), answers one summary of the
//! pubkey through the router, and exits. Prints the median, the fastest and the slowest
//! (BENCHMARKS.md). Lambda's own runtime start is not in it.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use tower::ServiceExt;

/// Freed memory is kept for reuse, as in the function.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One cold start: the app built, one request answered.
async fn once(pubkey: &str) -> anyhow::Result<()> {
    let app = query::app_from_config(query::Config::from_env()?).await?;
    let request = axum::http::Request::get(format!(
        "/api/v2/analytics/users/{pubkey}/summary?window=30d"
    ))
    .body(axum::body::Body::empty())?;
    let response = app.oneshot(request).await?;
    if !response.status().is_success() {
        bail!("the first request was answered {}", response.status());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let pubkey = arg("--pubkey").context("--pubkey <hex|npub> of a user to ask about")?;
    if std::env::args().any(|a| a == "--once") {
        let runtime = tokio::runtime::Runtime::new()?;
        return runtime.block_on(once(&pubkey));
    }
    let runs: usize = arg("--runs").map_or(Ok(20), |r| r.parse())?;
    let me = std::env::current_exe()?;
    let mut took = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = Command::new(&me)
            .args(["--once", "--pubkey", &pubkey])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("a cold start failed ({status})");
        }
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "query function cold start, process start to first answered summary, {runs} runs: \
         median {:.1} ms, fastest {:.1} ms, slowest {:.1} ms",
        took[took.len() / 2],
        took[0],
        took[took.len() - 1]
    );
    Ok(())
}
