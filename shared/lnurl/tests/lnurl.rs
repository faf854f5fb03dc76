//! The LNURL check against a real HTTP server on loopback.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use na_lnurl::{
    CacheOptions, CachedResolver, HttpOptions, HttpResolver, Lookup, NostrPubkeyResolver,
};
use na_test_support::{LnurlAnswer, LnurlServer};

async fn server() -> LnurlServer {
    LnurlServer::start(HashMap::from([
        ("alice".to_owned(), LnurlAnswer::Nostr("ab".repeat(32))),
        ("plain".to_owned(), LnurlAnswer::NoNostr),
        ("huge".to_owned(), LnurlAnswer::Huge(1 << 20)),
        ("slow".to_owned(), LnurlAnswer::Slow(Duration::from_secs(5))),
    ]))
    .await
}

fn loopback_resolver() -> HttpResolver {
    HttpResolver::new(HttpOptions {
        timeout: Duration::from_millis(500),
        allow_private: true,
        ..HttpOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn endpoints_answer_with_their_nostr_pubkey_or_say_why_not() {
    let s = server().await;
    let r = loopback_resolver();
    assert_eq!(
        r.lookup(&s.pay_url("alice")).await,
        Lookup::NostrPubkey([0xab; 32])
    );
    assert_eq!(r.lookup(&s.pay_url("plain")).await, Lookup::NoNostr);
    let failed = |l: Lookup| match l {
        Lookup::Failed(why) => why,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert_eq!(failed(r.lookup(&s.pay_url("nobody")).await), "HTTP 404");
    assert!(failed(r.lookup(&s.pay_url("huge")).await).contains("larger than"));
    assert_eq!(failed(r.lookup(&s.pay_url("slow")).await), "timed out");
    assert_eq!(
        failed(r.lookup("http://127.0.0.1:1/x").await),
        "cannot connect"
    );
}

#[tokio::test]
async fn a_production_resolver_refuses_loopback_before_connecting() {
    let s = server().await;
    let r = HttpResolver::new(HttpOptions::default()).unwrap();
    for url in [
        s.pay_url("alice"),
        s.pay_url("alice").replace("http://", "https://"),
    ] {
        assert!(
            matches!(r.lookup(&url).await, Lookup::Failed(why) if why.contains("refused")),
            "{url}"
        );
    }
    // A name that resolves only to loopback is refused by the resolver, not fetched.
    let by_name = s
        .pay_url("alice")
        .replace("http://127.0.0.1", "https://localhost.");
    assert!(matches!(r.lookup(&by_name).await, Lookup::Failed(_)));
    assert_eq!(s.hits(), 0, "nothing reached the server");
}

#[tokio::test]
async fn the_cache_fetches_once_and_forgets_failures_soon() {
    let s = server().await;
    let cached = CachedResolver::new(
        Arc::new(loopback_resolver()),
        CacheOptions {
            failure_ttl: Duration::from_millis(300),
            ..CacheOptions::default()
        },
    );
    let alice = s.pay_url("alice");
    let lookups = (0..10).map(|_| cached.lookup(&alice));
    let answers = futures_util::future::join_all(lookups).await;
    assert!(
        answers
            .iter()
            .all(|a| *a == Lookup::NostrPubkey([0xab; 32]))
    );
    assert_eq!(s.hits(), 1, "concurrent lookups share one fetch");
    assert_eq!(cached.lookup(&alice).await, Lookup::NostrPubkey([0xab; 32]));
    assert_eq!(s.hits(), 1, "answers are kept");

    let nobody = s.pay_url("nobody");
    assert!(matches!(cached.lookup(&nobody).await, Lookup::Failed(_)));
    assert!(matches!(cached.lookup(&nobody).await, Lookup::Failed(_)));
    assert_eq!(s.hits(), 2, "a failure is kept for a while");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(cached.lookup(&nobody).await, Lookup::Failed(_)));
    assert_eq!(s.hits(), 3, "and then fetched again");
}
