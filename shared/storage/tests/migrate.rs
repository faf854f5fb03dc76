//! The migrate step and what a deployed function checks at start, against the local
//! server: a function refuses a database it was not built for (none, no schema, older,
//! newer); the step creates nothing it was not asked to; two steps at once apply each
//! migration once.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use na_storage::{CreateDatabase, Db, Error, OLDEST_COMPATIBLE_SCHEMA, migrate, schema_version};

async fn admin() -> tokio_postgres::Client {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn client_of(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn refused(result: Result<Db, Error>) -> String {
    result.expect_err("refused").to_string()
}

#[tokio::test]
async fn a_function_opens_only_a_database_of_its_own_schema() {
    let url = na_test_support::fresh_database_url().await;
    let latest = schema_version();
    assert!(latest >= 16, "V{latest}");

    let says = refused(Db::open(&url, 1).await);
    assert!(
        says.contains("no schema yet") && says.contains("migrate"),
        "{says}"
    );

    let done = migrate(&url, CreateDatabase::Never).await.unwrap();
    assert_eq!(done.applied, (1..=latest).collect::<Vec<_>>());
    assert_eq!(done.version, latest);
    Db::open(&url, 1).await.unwrap();
    // Run again: nothing to do.
    assert_eq!(
        migrate(&url, CreateDatabase::Never).await.unwrap().applied,
        Vec::<i32>::new()
    );

    let db = client_of(&url).await;
    // A later release migrated it, leaving releases built for this schema able to run on
    // it (a rollback within its window): opened.
    db.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         SELECT $1, 'from_the_future', applied_on, '0' FROM refinery_schema_history LIMIT 1",
        &[&(latest + 1)],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE schema_compatibility SET readable_from = $1",
        &[&latest],
    )
    .await
    .unwrap();
    Db::open(&url, 1).await.unwrap();
    // One whose migrations were not additive: refused, saying which releases may run.
    db.execute(
        "UPDATE schema_compatibility SET readable_from = $1",
        &[&(latest + 1)],
    )
    .await
    .unwrap();
    let says = refused(Db::open(&url, 1).await);
    assert!(
        says.contains(&format!("V{}, newer than V{latest}", latest + 1))
            && says.contains(&format!("built for V{} or later", latest + 1)),
        "{says}"
    );
    assert!(migrate(&url, CreateDatabase::Never).await.is_err());
    // An older schema: the function says to migrate first.
    db.execute(
        "DELETE FROM refinery_schema_history WHERE version >= $1",
        &[&latest],
    )
    .await
    .unwrap();
    let says = refused(Db::open(&url, 1).await);
    assert!(
        says.contains(&format!("older than this build's V{latest}")),
        "{says}"
    );
}

#[tokio::test]
async fn a_missing_database_is_created_only_when_asked() {
    let base = na_test_support::fresh_database_url().await;
    let name = format!("na_test_missing_{}", std::process::id());
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    let admin = admin().await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .unwrap();
    let exists = async || {
        admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    };
    let says = refused(Db::open(&url, 1).await);
    assert!(
        says.contains(&format!("database \"{name}\" does not exist")),
        "{says}"
    );
    let says = migrate(&url, CreateDatabase::Never)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(says.contains("does not exist"), "{says}");
    assert!(!exists().await, "nothing created");
    migrate(&url, CreateDatabase::IfMissing).await.unwrap();
    assert!(exists().await);
    Db::open(&url, 1).await.unwrap();
    // Tidying only: a drop refused by a busy server is swept up by a later run.
    let _ = admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await;
}

#[tokio::test]
async fn two_steps_at_once_apply_each_migration_once() {
    let url = na_test_support::fresh_database_url().await;
    let (a, b) = tokio::join!(
        migrate(&url, CreateDatabase::Never),
        migrate(&url, CreateDatabase::Never)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all = [a.applied.clone(), b.applied.clone()].concat();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=schema_version()).collect::<Vec<_>>(),
        "{a:?} {b:?}"
    );
    assert!(
        a.applied.is_empty() || b.applied.is_empty(),
        "one waited: {a:?} {b:?}"
    );
}

/// What in a migration keeps a release built for the schema before it from running on
/// the schema after it; `None` when the migration only adds.
fn not_additive(sql: &str) -> Option<String> {
    let code: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    for statement in code.split(';') {
        let s = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        for refused in [
            "DROP ",
            "RENAME ",
            "TRUNCATE ",
            "DELETE FROM ",
            "SET NOT NULL",
        ] {
            if s.contains(refused) {
                return Some(format!("{}: {s}", refused.trim()));
            }
        }
        if s.contains("ALTER COLUMN") && s.contains(" TYPE ") {
            return Some(format!("a column retyped: {s}"));
        }
        if s.contains("ADD COLUMN") && s.contains("NOT NULL") && !s.contains("DEFAULT") {
            return Some(format!("a required column without a default: {s}"));
        }
    }
    None
}

#[test]
fn every_migration_in_the_compatibility_window_only_adds() {
    assert!(OLDEST_COMPATIBLE_SCHEMA <= schema_version());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: i32 = name[1..name.find("__").unwrap()].parse().unwrap();
        if version > OLDEST_COMPATIBLE_SCHEMA {
            let sql = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                not_additive(&sql),
                None,
                "{name} is inside the compatibility window (after V{OLDEST_COMPATIBLE_SCHEMA}) \
                 but a release built for V{OLDEST_COMPATIBLE_SCHEMA} could not run on it: make it \
                 additive, or raise OLDEST_COMPATIBLE_SCHEMA to V{version}"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        schema_version() - OLDEST_COMPATIBLE_SCHEMA,
        "one file per version"
    );
    // The check refuses what would break the older release.
    for sql in [
        "ALTER TABLE jobs DROP COLUMN result_pages;",
        "ALTER TABLE jobs RENAME COLUMN result TO answer;",
        "ALTER TABLE jobs ALTER COLUMN attempts TYPE bigint;",
        "ALTER TABLE jobs ADD COLUMN owner text NOT NULL;",
        "ALTER TABLE jobs ALTER COLUMN error SET NOT NULL;",
        "DROP TABLE job_result_pages;",
    ] {
        assert!(not_additive(sql).is_some(), "{sql}");
    }
    for sql in [
        "ALTER TABLE jobs ADD COLUMN owner text;",
        "ALTER TABLE jobs ADD COLUMN tries int NOT NULL DEFAULT 0;",
        "CREATE INDEX jobs_by_state ON jobs (state); -- drop it later",
    ] {
        assert_eq!(not_additive(sql), None, "{sql}");
    }
}
