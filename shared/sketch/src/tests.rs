#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

fn keys(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| hash_key(&rng.r#gen::<[u8; 32]>())).collect()
}

#[test]
fn exact_counts_and_retracts() {
    let mut s = DistinctSketch::default();
    let k = keys(3, 1);
    assert!(s.add(k[0], 2));
    assert!(s.add(k[1], 1));
    assert_eq!(
        s.estimate(),
        Estimate {
            value: 2,
            exact: true
        }
    );
    // One of k0's two contributions retracted: k0 still counts.
    assert!(s.add(k[0], -1));
    assert_eq!(s.estimate().value, 2);
    assert!(s.add(k[0], -1));
    assert_eq!(s.estimate().value, 1);
    // A retraction of a key that is not there is refused and changes nothing.
    assert!(!s.add(k[2], -1));
    assert!(!s.add(k[1], -2));
    assert_eq!(s.estimate().value, 1);
    assert!(s.add(k[1], -1));
    assert!(s.is_empty());
}

#[test]
fn becomes_approximate_past_the_limit_and_stays_close() {
    let mut s = DistinctSketch::default();
    for (i, h) in keys(EXACT_LIMIT, 2).into_iter().enumerate() {
        s.add(h, 1);
        assert_eq!(
            s.estimate(),
            Estimate {
                value: i as u64 + 1,
                exact: true
            }
        );
    }
    for n in [1_000usize, 20_000, 200_000] {
        let mut s = DistinctSketch::default();
        for h in keys(n, n as u64) {
            s.add(h, 1);
        }
        let e = s.estimate();
        assert!(!e.exact);
        let err = (e.value as f64 - n as f64).abs() / n as f64;
        assert!(err < 4.0 * STANDARD_ERROR, "{n} keys estimated {}", e.value);
        assert!(!s.add(keys(1, 9)[0], -1), "no retraction once approximate");
    }
}

#[test]
fn merge_is_a_union_in_any_order() {
    let all = keys(600, 3);
    let parts: Vec<DistinctSketch> = all
        .chunks(100)
        .map(|c| {
            let mut s = DistinctSketch::default();
            // Overlapping parts: each also holds the first key of the whole set.
            s.add(all[0], 1);
            for &h in c {
                s.add(h, 1);
            }
            s
        })
        .collect();
    let mut forward = DistinctSketch::default();
    parts.iter().for_each(|p| forward.merge(p));
    let mut backward = DistinctSketch::default();
    parts.iter().rev().for_each(|p| backward.merge(p));
    let mut direct = DistinctSketch::default();
    all.iter().for_each(|&h| {
        direct.add(h, 1);
    });
    assert_eq!(forward.to_hll_bytes(), direct.to_hll_bytes());
    assert_eq!(backward.to_hll_bytes(), direct.to_hll_bytes());

    let (mut small, mut small2) = (DistinctSketch::default(), DistinctSketch::default());
    small.add(all[0], 1);
    small2.add(all[0], 2);
    small2.add(all[1], 1);
    small.merge(&small2);
    assert_eq!(
        small,
        DistinctSketch::Exact({
            let mut v = vec![(all[0], 3), (all[1], 1)];
            v.sort_unstable();
            v
        })
    );
}

#[test]
fn stored_form_round_trips() {
    for n in [0usize, 1, 17, EXACT_LIMIT, EXACT_LIMIT + 1, 5_000] {
        let mut s = DistinctSketch::default();
        for (i, h) in keys(n, 4).into_iter().enumerate() {
            s.add(h, 1 + i as i64 % 3);
        }
        let bytes = s.to_hll_bytes();
        let back = DistinctSketch::from_stored(&bytes, s.counts_bytes().as_deref()).unwrap();
        assert_eq!(back, s, "{n} keys");
        let expected_type = match n {
            0 => TYPE_EMPTY,
            n if n <= EXACT_LIMIT => TYPE_EXPLICIT,
            _ => TYPE_FULL,
        };
        assert_eq!(bytes[0], 0x10 | expected_type);
        assert_eq!(bytes[1], 0x8b, "regwidth 5, log2m 11");
        assert_eq!(bytes[2], 9, "explicit threshold 256, sparse off");
    }
    assert!(DistinctSketch::from_stored(&[0x14, 0x8b, 9, 1, 2], None).is_err());
    assert!(DistinctSketch::from_stored(&[0x12, 0x6b, 9], None).is_err());
}
