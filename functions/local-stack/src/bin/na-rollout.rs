//! `na-rollout`: the rollout from the legacy analytics path to v2 from the command line,
//! against PostgreSQL directly (the same rules as `GET /api/v2/admin/flags`,
//! `PATCH …/flags/{key}` and `GET …/drift`; docs/rollout.md). A change reaches every
//! instance within the flag TTL (`NA_FLAG_TTL_MS`, 2 s by default).
//!
//! ```sh
//! na-rollout flags                                     # every flag
//! na-rollout set --mode dual --percent 10              # a tenth of pubkeys on the dual run
//! na-rollout set --mode v2 --percent 100 --deny npub1… # everyone on v2 but one
//! na-rollout rollback                                  # everyone on legacy: one step
//! na-rollout drift --hours 24                          # exit 1 when over threshold
//! na-rollout relay-scan --pubkey npub1… --days 30 --relay wss://relay.damus.io --relay wss://nos.lol
//! ```
//! Exit status: 0 done (drift: within threshold), 1 no such flag or drift over threshold,
//! 2 bad input or a database error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use na_api_types::{DriftReport, Flag, FlagUpdate, MetricDrift, Mode};
use na_rollout::V1_SUMMARY_FLAG;
use na_storage::Db;
use query::ApiError;

#[derive(Debug, Parser)]
#[command(
    name = "na-rollout",
    about = "Move pubkeys between the legacy and v2 analytics paths, and read the dual run's drift"
)]
struct Args {
    /// PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = na_storage::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every flag: mode, percentage, lists, revision, who changed it last.
    Flags,
    /// Change a flag; what is not given stays.
    Set {
        #[arg(long, default_value = V1_SUMMARY_FLAG)]
        flag: String,
        /// `legacy`, `dual` or `v2`.
        #[arg(long, value_parser = Mode::parse)]
        mode: Option<Mode>,
        /// The share of pubkeys (by cohort) given the mode, 0-100.
        #[arg(long)]
        percent: Option<u8>,
        /// A pubkey always given the mode (repeat; replaces the list).
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// A pubkey always given legacy (repeat; replaces the list).
        #[arg(long = "deny")]
        deny: Vec<String>,
        /// Empty the allow list.
        #[arg(long, conflicts_with = "allow")]
        clear_allow: bool,
        /// Empty the deny list.
        #[arg(long, conflicts_with = "deny")]
        clear_deny: bool,
    },
    /// Everyone back on the legacy path, in one change (lists and percentage are kept for
    /// going forward again).
    Rollback {
        #[arg(long, default_value = V1_SUMMARY_FLAG)]
        flag: String,
    },
    /// The dual run's drift per metric; fails when a metric is over its threshold over
    /// closed windows.
    Drift {
        #[arg(long, default_value = V1_SUMMARY_FLAG)]
        flag: String,
        /// Over the comparisons of the last this many hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a client computes by scanning relays itself (REQ per kind with `authors` or
    /// `#p`, pages of `--page-limit` back by `until`), next to the v2 answer of a running
    /// API, with the difference per field and why. Reads no database.
    RelayScan {
        /// The user: hex, npub or nprofile.
        #[arg(long)]
        pubkey: String,
        /// The last N days (default 7), or `--since`/`--until`.
        #[arg(long, conflicts_with_all = ["since", "until"])]
        days: Option<i64>,
        /// Unix seconds, inclusive.
        #[arg(long, requires = "until")]
        since: Option<i64>,
        /// Unix seconds, exclusive.
        #[arg(long, requires = "since")]
        until: Option<i64>,
        /// A relay to scan (repeat).
        #[arg(long = "relay", required = true)]
        relays: Vec<String>,
        /// The API whose v2 answer the scan is set against.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        api: String,
        /// Events asked for per REQ.
        #[arg(long, default_value_t = 500)]
        page_limit: usize,
        /// Pages per filter and relay before the scan gives up, as a client would.
        #[arg(long, default_value_t = 10)]
        max_pages: usize,
        /// Longest wait for one page, in seconds.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
        /// Print JSON (`scan`, `v2`, `differences`) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn flag_line(f: &Flag) -> String {
    let list = |l: &[String]| {
        if l.is_empty() {
            "-".to_owned()
        } else {
            l.join(",")
        }
    };
    format!(
        "{}\t{}\t{}%\tallow {}\tdeny {}\trevision {}\t{} by {}",
        f.key,
        f.mode.as_str(),
        f.percent,
        list(&f.allow),
        list(&f.deny),
        f.revision,
        f.updated_at.format("%Y-%m-%d %H:%M:%SZ"),
        f.updated_by
    )
}

fn drift_table(title: &str, rows: &[MetricDrift]) {
    println!("{title}");
    if rows.is_empty() {
        println!("  (no comparisons)");
        return;
    }
    println!(
        "  {:<22} {:<14} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "metric", "window", "compared", "differ", "over", "max diff", "threshold"
    );
    for d in rows {
        println!(
            "  {:<22} {:<14} {:>9} {:>9} {:>9} {:>9} {:>9.4}",
            d.metric,
            d.window_class.as_deref().unwrap_or("all"),
            d.compared,
            d.differing,
            d.over_threshold,
            d.max_difference,
            d.threshold
        );
    }
}

fn print_report(r: &DriftReport) {
    println!(
        "drift since {} ({} comparisons): {}",
        r.since.format("%Y-%m-%d %H:%M:%SZ"),
        r.observations,
        if r.within_threshold {
            "within threshold"
        } else {
            "OVER THRESHOLD"
        }
    );
    drift_table("closed windows", &r.closed);
    drift_table("closed windows by class", &r.by_window_class);
    drift_table("live-edge windows (reported apart)", &r.live_edge);
    if !r.first_differences.is_empty() {
        println!("first differences (bisect from these):");
        for d in &r.first_differences {
            println!(
                "  {} pubkey {} cohort {} {} [{}, {}) cutoff {}{}: {} legacy {} v2 {}",
                d.observed_at.format("%Y-%m-%d %H:%M:%SZ"),
                d.pubkey,
                d.cohort,
                d.window_class,
                d.from.timestamp(),
                d.to.timestamp(),
                d.cutoff.timestamp(),
                if d.live_edge { " (live edge)" } else { "" },
                d.metric,
                d.legacy,
                d.v2
            );
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("na-rollout: {}", e.detail());
            ExitCode::from(if matches!(e, ApiError::NotFound { .. }) {
                1
            } else {
                2
            })
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, ApiError> {
    if let Cmd::RelayScan { .. } = &args.command {
        return relay_scan(args.command).await.map(|()| ExitCode::SUCCESS);
    }
    let db = Db::open(&args.database_url, 1).await?;
    let by = format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    );
    match args.command {
        Cmd::Flags => {
            let conn = db.conn().await?;
            for f in na_storage::rollout::flags(&**conn).await? {
                println!("{}", flag_line(&na_rollout::flag_of(f)));
            }
        }
        Cmd::Set {
            flag,
            mode,
            percent,
            allow,
            deny,
            clear_allow,
            clear_deny,
        } => {
            let list =
                |given: Vec<String>, clear: bool| (clear || !given.is_empty()).then_some(given);
            let update = FlagUpdate {
                mode,
                percent,
                allow: list(allow, clear_allow),
                deny: list(deny, clear_deny),
            };
            let f = query::rollout::change_flag(&db, &flag, &update, &by).await?;
            println!("{}", flag_line(&f));
        }
        Cmd::Rollback { flag } => {
            let update = FlagUpdate {
                mode: Some(Mode::Legacy),
                ..FlagUpdate::default()
            };
            let f = query::rollout::change_flag(&db, &flag, &update, &by).await?;
            println!("{}", flag_line(&f));
        }
        Cmd::Drift { flag, hours, json } => {
            let since = chrono::Utc::now() - chrono::TimeDelta::hours(i64::from(hours));
            let report = query::rollout::drift_report(&db, &flag, since).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| ApiError::Internal(e.into()))?
                );
            } else {
                print_report(&report);
            }
            if !report.within_threshold {
                return Ok(ExitCode::from(1));
            }
        }
        Cmd::RelayScan { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn relay_scan(command: Cmd) -> Result<(), ApiError> {
    let Cmd::RelayScan {
        pubkey,
        days,
        since,
        until,
        relays,
        api,
        page_limit,
        max_pages,
        timeout_secs,
        json,
    } = command
    else {
        return Ok(());
    };
    let pubkey = query::ids::parse_pubkey(&pubkey)?;
    let now = chrono::Utc::now().timestamp();
    let (since, until, days) = match (since, until) {
        (Some(s), Some(u)) => (s, u, None),
        _ => {
            let days = days.unwrap_or(7);
            (now - days * 86_400, now, Some(days))
        }
    };
    if since >= until || page_limit == 0 || max_pages == 0 {
        return Err(ApiError::bad_request(
            "the window must not be empty, and --page-limit and --max-pages at least 1",
        ));
    }
    let url = format!(
        "{}/api/v2/analytics/users/{}/summary?from={since}&to={until}&metrics={}",
        api.trim_end_matches('/'),
        pubkey.to_hex(),
        na_api_types::V1_METRICS.join(",")
    );
    let unavailable = |e: String| ApiError::Refused {
        status: axum::http::StatusCode::BAD_GATEWAY,
        detail: e,
    };
    let response = reqwest::get(&url)
        .await
        .map_err(|e| unavailable(format!("{url}: {e}")))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| unavailable(format!("{url}: {e}")))?;
    if !status.is_success() {
        return Err(unavailable(format!("{url} answered {status}: {body}")));
    }
    let summary: na_api_types::Summary = serde_json::from_str(&body)
        .map_err(|e| unavailable(format!("{url} did not answer a summary: {e}")))?;
    let v2 = na_api_types::AnalyticsV1::from_summary(&summary, days);
    let scan = na_rollout::relay_scan::scan(&na_rollout::relay_scan::ScanRequest {
        pubkey,
        since,
        until,
        relays,
        page_limit,
        max_pages,
        timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
    })
    .await
    .map_err(ApiError::bad_request)?;
    let differences = na_rollout::relay_scan::compare(&scan, &v2);
    if json {
        let out = serde_json::json!({"scan": scan, "v2": v2, "differences": differences});
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| ApiError::Internal(e.into()))?
        );
        return Ok(());
    }
    println!(
        "relay scan of {} over [{since}, {until}), {} relay(s), pages of {page_limit} (at most {max_pages})",
        pubkey.to_hex(),
        scan.relays.len()
    );
    for r in &scan.relays {
        println!(
            "  {} {}",
            r.url,
            r.error
                .as_deref()
                .map_or("answered".to_owned(), |e| format!("did not answer: {e}"))
        );
    }
    let show = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "{:<17} {:>11} {:>11} {:>8}  why",
        "field", "relay scan", "v2", "diff"
    );
    for d in &differences {
        println!(
            "{:<17} {:>11} {:>11} {:>8}  {}",
            d.field,
            show(d.relay_scan),
            show(d.v2),
            d.difference.map_or("-".to_owned(), |v| format!("{v:+}")),
            d.why.join("; ")
        );
    }
    Ok(())
}
