//! The `nostr-analytics` binary as the README runs it: demo relay, ingest, gateway.
#![allow(clippy::unwrap_used)] // a test reports failure by panicking

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Stack(Child);

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get_json(url: &str) -> Option<serde_json::Value> {
    let addr = url.trim_start_matches("http://");
    let (host, path) = addr.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await.ok()?;
    let body = buf.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

#[tokio::test]
async fn the_stack_serves_its_demo_data_offline() {
    let database_url = na_test_support::fresh_database_url().await;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--run-for", "120"])
        .env("DATABASE_URL", &database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _stack = Stack(child);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let accepted = loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the stack did not ingest its demo data"
        );
        if let Some(status) = get_json(&format!("{base}/api/v2/analytics/status")).await
            && let Some(n) = status["relays"][0]["counters"]["accepted"].as_u64()
            && n > 3000
            && !status["relays"][0]["watermark"].is_null()
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(accepted < 10_000, "{accepted}");
    assert_eq!(
        get_json(&format!("{base}/health")).await.unwrap()["status"],
        "ok"
    );
    built_plugin("core-metrics");
    let plugins = get_json(&format!("{base}/api/v2/admin/plugins"))
        .await
        .unwrap();
    assert_eq!(
        plugins["plugins"][0]["name"], "core",
        "the built-in catalog: {plugins}"
    );
    assert_eq!(plugins["plugins"][0]["published_by"], "built-in");
    assert_eq!(plugins["plugins"][0]["state"], "active", "{plugins}");

    // The stack compacts on its own schedule until nothing is left behind.
    let lag = loop {
        assert!(
            started.elapsed() < Duration::from_secs(110),
            "compaction did not catch up"
        );
        let status = get_json(&format!("{base}/api/v2/analytics/status")).await;
        if let Some(lag) = status.as_ref().map(|s| s["compaction"][0].clone())
            && lag["plugin"] == "core@1"
            && lag["rows"] == 0
        {
            break lag;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (db, conn) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let reactions: i64 = db
        .query_one(
            "SELECT coalesce(sum(b.value), 0)::bigint FROM buckets_day b
             JOIN plugin_metrics m ON m.series = b.series WHERE m.metric = 'reactions_received'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        reactions > 100,
        "{reactions} reactions in day buckets ({lag})"
    );
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"))
        .args(["--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            "postgres://postgres:secret@127.0.0.1:1/nostr_analytics",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PostgreSQL is needed at postgres://postgres@127.0.0.1:1/nostr_analytics"),
        "{err}"
    );
    assert!(
        err.contains("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the password is not printed: {err}"
    );
}

#[tokio::test]
async fn the_plugin_cli_publishes_lists_and_explains_refusals() {
    let database_url = na_test_support::fresh_database_url().await;
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_na-plugins"))
            .args(args)
            .env("DATABASE_URL", &database_url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let component = built_plugin("likes-metrics");
    let (code, out, err) = cli(&["publish", &component, "--by", "team-a"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("published likes@2\tshadow"), "{out}");
    let (code, out, _) = cli(&["publish", &component, "--by", "team-a"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("unchanged"), "{out}");
    let (_, out, _) = cli(&["list"]);
    assert!(out.contains("likes_received@2"), "{out}");

    let (code, _, err) = cli(&["activate", "likes@2"]);
    assert_eq!(code, Some(1), "refused: {err}");
    assert!(err.contains("recompute"), "{err}");
    let (code, out, err) = cli(&["recompute", "likes@2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("recomputed likes@2"), "{out}");
    let (code, out, err) = cli(&["activate", "likes@2"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\tactive\t"), "{out}");
    let (code, _, err) = cli(&["recompute", "likes@2"]);
    assert_eq!(code, Some(1), "an active version is not rebuilt: {err}");
    assert!(err.contains("only a shadow version"), "{err}");
    let (code, _, err) = cli(&["activate", "likes"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("name@version"), "{err}");
    let garbage = std::env::temp_dir().join(format!("not-a-plugin-{}.wasm", std::process::id()));
    std::fs::write(&garbage, b"nope").unwrap();
    let (code, _, err) = cli(&["publish", garbage.to_str().unwrap(), "--by", "x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a loadable WASM component"), "{err}");
    let (code, out, _) = cli(&["retire", "likes@2"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("retired"), "{out}");
}

/// The path of a built component (`scripts/build-plugins`), failing loudly when missing.
fn built_plugin(name: &str) -> String {
    na_plugin_host::read_built_component(name).unwrap_or_else(|e| panic!("{e}"));
    na_plugin_host::plugin_dir()
        .join(format!("{name}.wasm"))
        .to_string_lossy()
        .into_owned()
}
