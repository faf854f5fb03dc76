//! The catalog against fixtures: one fact per rule, what each metric gets.

use std::collections::BTreeMap;

use na_metrics_sdk::abi::{Fact, run_native};

use super::*;

const T: [u8; 32] = [0x71; 32];
const FAN: [u8; 32] = [0xf1; 32];
const FAN2: [u8; 32] = [0xf2; 32];

fn fact(class: u16, actor: [u8; 32], subject: Option<[u8; 32]>, flags: u32) -> Fact {
    Fact {
        created_at: 1_700_000_000,
        class,
        actor,
        subject,
        flags,
        ..Fact::default()
    }
}

/// metric name -> (subject's first byte -> summed value, or distinct keys for distinct).
fn run(facts: &[Fact]) -> BTreeMap<String, BTreeMap<u8, i64>> {
    let info = Core::describe();
    let out = run_native::<Core>(facts).unwrap();
    let mut totals: BTreeMap<String, BTreeMap<u8, i64>> = BTreeMap::new();
    let mut keys: BTreeMap<(u16, u8), std::collections::BTreeSet<Vec<u8>>> = BTreeMap::new();
    for c in out.iter() {
        let metric = &info.metrics[usize::from(c.metric)];
        if metric.aggregation == Aggregation::Distinct {
            keys.entry((c.metric, c.subject[0]))
                .or_default()
                .insert(c.key.to_vec());
            let n = keys[&(c.metric, c.subject[0])].len() as i64;
            totals
                .entry(metric.name.clone())
                .or_default()
                .insert(c.subject[0], n);
        } else {
            *totals
                .entry(metric.name.clone())
                .or_default()
                .entry(c.subject[0])
                .or_default() += c.value;
        }
    }
    totals
}

fn get(totals: &BTreeMap<String, BTreeMap<u8, i64>>, metric: &str, who: [u8; 32]) -> i64 {
    totals
        .get(metric)
        .and_then(|m| m.get(&who[0]))
        .copied()
        .unwrap_or(0)
}

#[test]
fn the_description_is_the_catalog_in_index_order() {
    let info = Core::describe();
    assert!(info.problems().is_empty(), "{:?}", info.problems());
    assert_eq!(info.metrics.len(), 20);
    assert_eq!(
        info.metrics[Metric::FollowerCount as usize].name,
        "follower_count"
    );
    assert_eq!(
        info.metrics[Metric::UniqueEngagers as usize].name,
        "unique_engagers"
    );
}

/// What, the facts, the metric, whose value, the value expected.
type Case = (&'static str, Vec<Fact>, &'static str, [u8; 32], i64);

#[test]
fn each_rule_counts_where_the_catalog_says() {
    let zap = |actor, subject, amount, flags| Fact {
        amount_msats: Some(amount),
        dims: vec![("lnurl".into(), "verified".into())],
        ..fact(class::ZAP, actor, Some(subject), flags)
    };
    // (what, facts, metric, pubkey, expected)
    let cases: Vec<Case> = vec![
        (
            "a note",
            vec![fact(class::NOTE, T, None, 0)],
            "notes_published",
            T,
            1,
        ),
        (
            "a deleted note",
            vec![fact(class::NOTE, T, None, flag::DELETED)],
            "notes_published",
            T,
            0,
        ),
        (
            "an expired note",
            vec![fact(class::NOTE, T, None, flag::EXPIRED)],
            "notes_published",
            T,
            0,
        ),
        (
            "a reply to T",
            vec![fact(class::REPLY, FAN, Some(T), 0)],
            "replies_received",
            T,
            1,
        ),
        (
            "T's reply to itself",
            vec![fact(class::REPLY, T, Some(T), flag::SELF)],
            "replies_received",
            T,
            0,
        ),
        (
            "T's reply is published",
            vec![fact(class::REPLY, T, Some(FAN), 0)],
            "replies_published",
            T,
            1,
        ),
        (
            "an unresolved reply with no hint",
            vec![fact(class::REPLY, FAN, None, flag::UNRESOLVED)],
            "replies_received",
            T,
            0,
        ),
        (
            "a comment",
            vec![fact(class::COMMENT, FAN, Some(T), 0)],
            "comments_received",
            T,
            1,
        ),
        (
            "a repost",
            vec![fact(class::REPOST, FAN, Some(T), 0)],
            "reposts_received",
            T,
            1,
        ),
        (
            "a quote",
            vec![fact(class::QUOTE, FAN, Some(T), 0)],
            "quotes_received",
            T,
            1,
        ),
        (
            "a mention",
            vec![fact(class::MENTION, FAN, Some(T), 0)],
            "mentions_received",
            T,
            1,
        ),
        (
            "a mention in a reply to T",
            vec![fact(
                class::MENTION,
                FAN,
                Some(T),
                flag::MENTIONS_TARGET_AUTHOR,
            )],
            "mentions_received",
            T,
            0,
        ),
        (
            "a zap",
            vec![zap(FAN, T, 21_000, 0)],
            "zap_msats_received",
            T,
            21_000,
        ),
        (
            "an invalid zap",
            vec![zap(FAN, T, 21_000, flag::INVALID)],
            "zaps_received",
            T,
            0,
        ),
        (
            "a duplicate receipt",
            vec![
                zap(FAN, T, 21_000, 0),
                zap(FAN, T, 21_000, flag::DUPLICATE_PAYMENT),
            ],
            "zaps_received",
            T,
            1,
        ),
        (
            "a self-zap is sent",
            vec![zap(T, T, 5_000, flag::SELF)],
            "zap_msats_sent",
            T,
            5_000,
        ),
        (
            "a self-zap is not received",
            vec![zap(T, T, 5_000, flag::SELF)],
            "zaps_received",
            T,
            0,
        ),
        (
            "two zaps, one zapper",
            vec![zap(FAN, T, 1_000, 0), zap(FAN, T, 2_000, 0)],
            "unique_zappers",
            T,
            1,
        ),
        (
            "over 1M sats is not capped",
            vec![zap(FAN, T, 2_100_000_000, 0)],
            "zap_msats_received",
            T,
            2_100_000_000,
        ),
        (
            "engagers are distinct",
            vec![
                fact(class::REPLY, FAN, Some(T), 0),
                fact(class::REACTION, FAN, Some(T), 0),
                fact(class::REPOST, FAN2, Some(T), 0),
            ],
            "unique_engagers",
            T,
            2,
        ),
        (
            "an article",
            vec![fact(class::ARTICLE, T, None, 0)],
            "articles_published",
            T,
            1,
        ),
        (
            "an article edit",
            vec![fact(class::ARTICLE, T, None, flag::EDIT)],
            "articles_published",
            T,
            0,
        ),
        (
            "a baseline is not a gain",
            vec![fact(class::FOLLOW_BASELINE, FAN, Some(T), 0)],
            "followers_gained",
            T,
            0,
        ),
        (
            "a baseline is a follower",
            vec![fact(class::FOLLOW_BASELINE, FAN, Some(T), 0)],
            "follower_count",
            T,
            1,
        ),
        (
            "gained then lost",
            vec![
                fact(class::FOLLOW_GAINED, FAN, Some(T), 0),
                fact(class::FOLLOW_LOST, FAN, Some(T), 0),
            ],
            "follower_count",
            T,
            0,
        ),
        (
            "a loss",
            vec![fact(class::FOLLOW_LOST, FAN, Some(T), 0)],
            "followers_lost",
            T,
            1,
        ),
    ];
    for (what, facts, metric, who, want) in cases {
        assert_eq!(get(&run(&facts), metric, who), want, "{what}: {metric}");
    }
}

#[test]
fn reactions_carry_class_and_short_content() {
    let long = "🤙".repeat(20);
    let reaction = Fact {
        dims: vec![("class".into(), "emoji".into()), ("content".into(), long)],
        ..fact(class::REACTION, FAN, Some(T), 0)
    };
    let contributions = run_native::<Core>(&[reaction]).unwrap();
    let received = contributions
        .iter()
        .find(|c| c.metric == Metric::ReactionsReceived as u16)
        .unwrap();
    let dims: Vec<(&str, &str)> = received.dims().collect();
    assert_eq!(dims[0], ("class", "emoji"));
    assert_eq!(
        dims[1].1,
        "🤙".repeat(8),
        "cut at a character boundary within 32 bytes"
    );
}
