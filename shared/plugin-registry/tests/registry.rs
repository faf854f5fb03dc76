//! Publishing, listing, activating and retiring against a real PostgreSQL and real
//! components built by `scripts/build-plugins`.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

use std::sync::Arc;

use na_plugin_host::{HostConfig, PluginHost};
use na_plugin_registry::{PublishError, Registry, sample_facts};
use na_storage::{Db, Error, Published, RegistryRefusal};

fn component(name: &str) -> Vec<u8> {
    na_test_support::built_component(name).unwrap_or_else(|e| panic!("{e}"))
}

async fn registry() -> (Registry, Arc<PluginHost>) {
    let (registry, host, _) = registry_and_db().await;
    (registry, host)
}

async fn registry_and_db() -> (Registry, Arc<PluginHost>, Db) {
    let url = na_test_support::fresh_database_url().await;
    let db = Db::connect(&url, 2).await.unwrap();
    let host = Arc::new(PluginHost::new(HostConfig::default()).unwrap());
    (Registry::new(db.clone(), host.clone()), host, db)
}

fn refusal(e: Error) -> RegistryRefusal {
    match e {
        Error::Refused(r) => r,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_version_is_published_once_and_never_changed() {
    let (registry, _) = registry().await;
    let core = component("core-metrics");
    let Published::Created(record) = registry.publish(core.clone(), "alice").await.unwrap() else {
        panic!("expected a new version");
    };
    assert_eq!(
        (record.name.as_str(), record.version, record.state.as_str()),
        ("core", 1, "shadow")
    );
    assert_eq!(record.published_by, "alice");
    assert_eq!(record.description["metrics"].as_array().unwrap().len(), 20);
    assert_eq!(record.description["metrics"][0]["id"], "notes_published@1");

    // The same bytes again: nothing changes.
    assert!(matches!(
        registry.publish(core.clone(), "bob").await.unwrap(),
        Published::Unchanged(r) if r.published_by == "alice"
    ));
    // Different bytes under core@1 (a custom section appended: still a valid component).
    let mut changed = core.clone();
    changed.extend_from_slice(&[0, 6, 5, b'n', b'o', b't', b'e', b'!']);
    let err = registry.publish(changed, "mallory").await.unwrap_err();
    let PublishError::Storage(e) = err else {
        panic!("{err}")
    };
    let refused = refusal(e);
    assert!(
        matches!(refused, RegistryRefusal::VersionTaken(ref id, _) if id == "core@1"),
        "{refused}"
    );
    assert!(refused.to_string().contains("publish a new version"));
    assert_eq!(registry.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_versions_of_one_metric_live_side_by_side() {
    let (registry, host) = registry().await;
    registry
        .publish(component("likes-v1-plugin"), "team-a")
        .await
        .unwrap();
    registry
        .publish(component("likes-metrics"), "team-a")
        .await
        .unwrap();
    let listed: Vec<(String, i32)> = registry
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.version))
        .collect();
    assert_eq!(listed, vec![("likes".into(), 2), ("likes".into(), 1)]);

    // The same likes, counted by each version: v1 counts repeats, v2 one per reactor per note.
    let sample = sample_facts();
    let v1 = host.load(&component("likes-v1-plugin")).unwrap();
    let v2 = host.load(&component("likes-metrics")).unwrap();
    let mut repeated = sample.clone();
    repeated.extend(sample.iter().filter(|f| f.class == 4).cloned());
    let counted = host.run(&v1, &repeated).unwrap().len();
    let distinct: std::collections::BTreeSet<Vec<u8>> = host
        .run(&v2, &repeated)
        .unwrap()
        .iter()
        .map(|c| c.key.to_vec())
        .collect();
    assert_eq!(counted, 2 * host.run(&v1, &sample).unwrap().len());
    assert!(
        distinct.len() < counted,
        "v2 does not count a repeated like twice"
    );
}

#[tokio::test]
async fn activation_waits_for_the_recompute_and_retirement_is_final() {
    let (registry, _) = registry().await;
    registry
        .publish(component("likes-metrics"), "team-a")
        .await
        .unwrap();
    let early = refusal(registry.activate("likes", 2).await.unwrap_err());
    assert_eq!(early, RegistryRefusal::NotRecomputed("likes@2".into()));
    assert!(early.to_string().contains("recompute"));
    assert_eq!(
        refusal(registry.activate("likes", 9).await.unwrap_err()),
        RegistryRefusal::NotFound("likes@9".into())
    );

    registry.mark_recomputed("likes", 2).await.unwrap();
    let active = registry.activate("likes", 2).await.unwrap();
    assert_eq!(active.state, "active");
    assert!(active.activated_at.is_some());
    assert_eq!(
        registry.activate("likes", 2).await.unwrap().state,
        "active",
        "idempotent"
    );

    let retired = registry.retire("likes", 2).await.unwrap();
    assert_eq!(retired.state, "retired");
    assert_eq!(
        refusal(registry.activate("likes", 2).await.unwrap_err()),
        RegistryRefusal::Retired("likes@2".into())
    );
}

#[tokio::test]
async fn what_is_not_a_plugin_is_refused_with_the_reason() {
    let (registry, _) = registry().await;
    let cases: [(&[u8], &str); 2] = [
        (b"\0asm not really", "not a loadable WASM component"),
        (&[0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0], "does not implement"),
    ];
    for (bytes, words) in cases {
        let err = registry.publish(bytes.to_vec(), "alice").await.unwrap_err();
        assert!(matches!(err, PublishError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(words), "{err}");
    }
    let err = registry
        .publish(component("core-metrics"), " ")
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::BadRequest(_)), "{err}");
    assert!(registry.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_metric_version_belongs_to_one_plugin() {
    let (registry, _, db) = registry_and_db().await;
    registry
        .publish(component("likes-metrics"), "team-a")
        .await
        .unwrap();
    let description = serde_json::json!({});
    let err = db
        .publish_plugin(&na_storage::NewPlugin {
            name: "copycat",
            version: 1,
            content_hash: &[7; 32],
            artifact: b"validated elsewhere",
            abi: 1,
            description: &description,
            metrics: vec![("likes_received", 2, "distinct")],
            published_by: "team-b",
        })
        .await
        .unwrap_err();
    assert_eq!(
        refusal(err),
        RegistryRefusal::MetricTaken("likes_received@2".into(), "likes@2".into())
    );
}
