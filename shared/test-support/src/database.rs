use tokio_postgres::NoTls;

/// The server tests create their databases on: `TEST_DATABASE_URL`, or the local default.
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Creates an empty database for one test and returns its URL. Test databases left by runs
/// more than two hours old are dropped on the way.
///
/// # Panics
/// When PostgreSQL cannot be reached: the suite needs it (see the README).
pub async fn fresh_database_url() -> String {
    let admin = admin_url();
    let (client, conn) = tokio_postgres::connect(&admin, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "tests need PostgreSQL at {admin} (set TEST_DATABASE_URL or start the server): {e}"
            )
        });
    tokio::spawn(conn);
    // One process sweeps at a time: two hundred test processes dropping the same stale
    // databases at once is a storm of forced checkpoints on a shared server.
    let sweeping = client
        .query_one("SELECT pg_try_advisory_lock(7_266_771)", &[])
        .await
        .is_ok_and(|row| row.get::<_, bool>(0));
    if sweeping {
        let stale = client
            .query(
                "SELECT datname FROM pg_database
                 WHERE datname LIKE 'na_test_%'
                   AND (pg_stat_file('base/' || oid || '/PG_VERSION')).modification < now() - interval '2 hours'",
                &[],
            )
            .await
            .unwrap_or_default();
        for row in stale {
            let name: String = row.get(0);
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
        let _ = client
            .execute("SELECT pg_advisory_unlock(7_266_771)", &[])
            .await;
    }
    let name = format!("na_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}

/// Waits until every fact-log row is below the server's safe horizon, where the compactor
/// takes it: transaction ids are server-wide, so an open transaction in any database (a
/// parallel test's, a benchmark's) can hold the horizon back for a moment, and a test that
/// expects one compaction batch to take its rows would see none. Panics after a minute.
pub async fn wait_for_safe_horizon(client: &tokio_postgres::Client) {
    let started = std::time::Instant::now();
    loop {
        let below: bool = client
            .query_one(
                "SELECT coalesce(max(txid::text::bigint), 0)
                        < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
                 FROM fact_log",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("reading the safe horizon: {e}"))
            .get(0);
        if below {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the safe horizon stayed below the fact log for a minute"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
