//! A request path's pool: every statement bounded, unless its transaction says otherwise.

use std::time::Duration;

use na_storage::Db;

#[tokio::test]
async fn a_bounded_pool_stops_long_statements_but_not_migrations_or_a_snapshot_s_own_limit() {
    let url = na_test_support::fresh_database_url().await;
    // The migrate step has no limit; the pool opened after it has one.
    na_storage::migrate(&url, na_storage::CreateDatabase::Never)
        .await
        .unwrap();
    let db = Db::open_bounded(&url, 1, Duration::from_millis(300))
        .await
        .unwrap();
    let conn = db.conn().await.unwrap();
    let limit: String = conn
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(limit, "300ms");
    let err = conn.execute("SELECT pg_sleep(2)", &[]).await.unwrap_err();
    let err = na_storage::Error::from(err);
    assert!(err.is_timeout(), "{err}");
    drop(conn);
    let mut conn = db.conn().await.unwrap();
    let tx = na_storage::snapshot(&mut conn, Duration::from_secs(5))
        .await
        .unwrap();
    tx.execute("SELECT pg_sleep(0.5)", &[]).await.unwrap();
    tx.commit().await.unwrap();

    // An unbounded pool (the writers') has no limit of its own.
    let writer = Db::connect(&url, 1).await.unwrap();
    let limit: String = writer
        .conn()
        .await
        .unwrap()
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(limit, "0");
}
