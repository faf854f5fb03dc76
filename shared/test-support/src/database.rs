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
    let name = format!("na_test_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    format!("{base}/{name}")
}
