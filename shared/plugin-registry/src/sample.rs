//! The trial batch every plugin must map before it is published: each fact class, with and
//! without each flag, subjects present and missing, dims as ingest writes them.

use na_metrics_abi::Fact;

/// Deterministic sample facts (14 classes x 9 flag variants x 2 subject variants).
pub fn sample_facts() -> Vec<Fact> {
    let mut out = Vec::new();
    let mut n: u8 = 0;
    for class in 1..=14u16 {
        for flags in [0u32, 1, 2, 4, 8, 16, 32, 64, 128] {
            for with_subject in [true, false] {
                n = n.wrapping_add(1);
                out.push(Fact {
                    created_at: 1_700_000_000 + i64::from(n) * 60,
                    event_id: [n; 32],
                    seq: 0,
                    class,
                    flags,
                    actor: [n % 7 + 1; 32],
                    subject: with_subject.then_some([n % 5 + 10; 32]),
                    target_event: Some([n % 3 + 20; 32]),
                    target_coord: (class == 9)
                        .then(|| format!("30023:{}:post-{n}", "ab".repeat(32))),
                    amount_msats: (class == 8).then_some(i64::from(n) * 1000),
                    expires_at: None,
                    dims: match class {
                        4 => vec![
                            ("class".into(), "like".into()),
                            ("content".into(), "+".into()),
                        ],
                        8 => vec![("lnurl".into(), "unverified".into())],
                        _ => Vec::new(),
                    },
                });
            }
        }
    }
    out
}
