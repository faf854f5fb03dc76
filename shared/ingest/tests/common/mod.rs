//! Shared set-up for the ingest integration tests.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::time::Duration;

use na_ingest::IngestConfig;
use na_storage::Db;
use tokio_postgres::NoTls;

pub async fn db() -> (Db, tokio_postgres::Client) {
    na_telemetry::init(&na_telemetry::LogSettings::from_lookup(&|k| {
        std::env::var(k).ok()
    }));
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 4)
        .await
        .expect("connect to the test database");
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    (db, client)
}

pub fn config(relays: &[String]) -> IngestConfig {
    IngestConfig {
        relays: relays.to_vec(),
        lookback: None,
        overlap: Duration::from_secs(600),
        page_limit: 100,
        batch_size: 200,
        request_timeout: Duration::from_secs(20),
        ..IngestConfig::default()
    }
}

pub async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Polls until `sql` returns true; panics after a generous minute.
pub async fn wait_for(client: &tokio_postgres::Client, sql: &str) {
    for _ in 0..600 {
        if client
            .query_one(sql, &[])
            .await
            .expect(sql)
            .get::<_, bool>(0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {sql}");
}

/// Runs live ingest until every configured relay has a watermark at or after `after`.
pub async fn run_until_caught_up(
    db: &Db,
    client: &tokio_postgres::Client,
    cfg: &IngestConfig,
    after: chrono::DateTime<chrono::Utc>,
) -> na_ingest::live::RunReport {
    let relays = cfg.relays.len() as i64;
    let sql = format!(
        "SELECT count(*) = {relays} FROM ingest_watermarks WHERE watermark >= '{}'",
        after.to_rfc3339()
    );
    let stop = async { wait_for(client, &sql).await };
    na_ingest::live::run_until(db, cfg, stop)
        .await
        .expect("ingest run")
}

/// Starts a live run in the background; send on the returned channel to end it.
pub fn spawn_run(
    db: &Db,
    cfg: &IngestConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<na_ingest::Result<na_ingest::live::RunReport>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (db, cfg) = (db.clone(), cfg.clone());
    let run = tokio::spawn(async move {
        na_ingest::live::run_until(&db, &cfg, async {
            let _ = stop_rx.await;
        })
        .await
    });
    (stop_tx, run)
}

/// Waits until one relay's watermark is at or after `since` (a catch-up or live batch
/// committed after it).
pub async fn wait_for_watermark(
    client: &tokio_postgres::Client,
    since: chrono::DateTime<chrono::Utc>,
) {
    wait_for(
        client,
        &format!(
            "SELECT count(*) = 1 FROM ingest_watermarks WHERE watermark >= '{}'",
            since.to_rfc3339()
        ),
    )
    .await;
}
