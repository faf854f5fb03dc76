//! Freshness, measured end to end on a running stack: how long from publishing an event to
//! a relay the stack ingests until a query counts it. A probe user publishes a note, then
//! `--events` fresh users react to it one after another (a pause of 0 to 1 s between
//! them, so publishes fall anywhere in a second). After each publish the probe user's
//! summary (nothing else touches that user) is read every 10 ms until it counts the
//! reaction, twice:
//! - over a window that has not ended (`to` an hour ahead): ingest and query alone;
//! - over the rolling `24h`, which ends at the current second, exclusive: an event is
//!   counted once its `created_at` second has passed, up to a second later.
//!
//! Prints the percentiles of both (BENCHMARKS.md).
//!
//! `na-freshness [--gateway http://127.0.0.1:8080] [--relay ws://…] [--events 200]`; the
//! relay defaults to the first the stack's `/status` lists (the demo relay).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use nostr_sdk::prelude::*;

#[derive(Debug, Parser)]
#[command(
    name = "na-freshness",
    about = "Publish-to-query freshness of a running stack"
)]
struct Args {
    /// The stack's gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// A relay the stack ingests live (default: the first in its /status).
    #[arg(long)]
    relay: Option<String>,
    /// Reactions published and timed.
    #[arg(long, default_value_t = 200)]
    events: usize,
}

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<serde_json::Value> {
    let body = http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&body)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let relay = match args.relay {
        Some(r) => r,
        None => get_json(&http, &format!("{}/api/v2/analytics/status", args.gateway))
            .await
            .context("the stack's /status (is it running? --gateway)")?["relays"][0]["url"]
            .as_str()
            .context("the stack lists no relay")?
            .to_owned(),
    };
    let client = Client::default();
    client.add_relay(&relay).await?;
    client.connect().await;
    let author = Keys::generate();
    let note = EventBuilder::text_note("freshness probe").sign_with_keys(&author)?;
    client.send_event(&note).await?;
    let started = chrono::Utc::now().timestamp();
    let user = format!(
        "{}/api/v2/analytics/users/{}/summary?metrics=reactions_received",
        args.gateway,
        author.public_key().to_hex()
    );
    let open_window = format!("{user}&from={}&to={}", started - 3600, started + 3600);
    let rolling = format!("{user}&window=24h");
    // Reads `url` until it counts `n` reactions; how long since `since`.
    let counted = async |url: &str, n: i64, since: Instant| -> anyhow::Result<Duration> {
        loop {
            let seen = get_json(&http, url).await?["metrics"][0]["value"]
                .as_i64()
                .unwrap_or(0);
            if seen >= n {
                return Ok(since.elapsed());
            }
            if since.elapsed() > Duration::from_secs(60) {
                bail!("reaction {n} was not counted within 60 s ({seen} counted): {url}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let (mut ingest, mut latencies) = (Vec::new(), Vec::with_capacity(args.events));
    for i in 1..=args.events {
        // Spread the publishes over the second, deterministically.
        tokio::time::sleep(Duration::from_millis((i as u64 * 379) % 1000)).await;
        let reaction = EventBuilder::new(Kind::Reaction, "+")
            .tag(Tag::event(note.id))
            .tag(Tag::public_key(author.public_key()))
            .sign_with_keys(&Keys::generate())?;
        let published = Instant::now();
        client.send_event(&reaction).await?;
        ingest.push(counted(&open_window, i as i64, published).await?);
        latencies.push(counted(&rolling, i as i64, published).await?);
    }
    report("in a window that has not ended", &mut ingest, &relay);
    report("in the rolling 24h", &mut latencies, &relay);
    Ok(())
}

fn report(what: &str, latencies: &mut [Duration], relay: &str) {
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "publish to counted {what}, {} events via {relay}: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        latencies.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0)
    );
}
