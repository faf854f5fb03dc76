//! Our stored sketches are postgresql-hll values: the extension (installed by
//! `scripts/setup`) reads, counts and unions them, and its hash is ours.

#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]
use na_sketch::{DistinctSketch, hash_key};
use tokio_postgres::NoTls;

async fn client() -> tokio_postgres::Client {
    let url = na_test_support::fresh_database_url().await;
    let (client, conn) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS hll")
        .await
        .expect(
            "the postgresql-hll extension (Debian postgresql-15-hll; scripts/setup installs it)",
        );
    client
}

fn key(i: u32) -> Vec<u8> {
    let mut k = vec![0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k[31] = (i % 251) as u8;
    k
}

fn sketch(range: std::ops::Range<u32>) -> DistinctSketch {
    let mut s = DistinctSketch::default();
    for i in range {
        s.add(hash_key(&key(i)), 1);
    }
    s
}

#[tokio::test]
async fn the_extension_reads_counts_and_unions_our_sketches() {
    let db = client().await;
    for n in [1u32, 7, 256, 257, 3_000, 100_000] {
        let keys: Vec<Vec<u8>> = (0..n).map(key).collect();
        let ours = sketch(0..n);
        // Same hash, same registers: the extension builds the identical value from the keys.
        let row = db
            .query_one(
                "SELECT hll_cardinality($1::bytea::hll),
                        hll_add_agg(hll_hash_bytea(k), 11, 5, 256, 0)::text,
                        hll_hash_bytea($2[1])::text::bigint
                 FROM unnest($2::bytea[]) k",
                &[&ours.to_hll_bytes(), &keys],
            )
            .await
            .unwrap();
        let card: f64 = row.get(0);
        assert!(
            (card - ours.cardinality()).abs() < 1e-6,
            "{n}: {card} vs {}",
            ours.cardinality()
        );
        let theirs: String = row.get(1);
        assert_eq!(
            theirs,
            format!("\\x{}", hex(&ours.to_hll_bytes())),
            "{n} keys"
        );
        let first: i64 = row.get(2);
        assert_eq!(first, hash_key(&keys[0]));
    }
    // A union in SQL equals our merge.
    let (a, b) = (sketch(0..200), sketch(150..5_000));
    let mut merged = a.clone();
    merged.merge(&b);
    let union: f64 = db
        .query_one(
            "SELECT hll_cardinality(hll_union($1::bytea::hll, $2::bytea::hll))",
            &[&a.to_hll_bytes(), &b.to_hll_bytes()],
        )
        .await
        .unwrap()
        .get(0);
    assert!((union - merged.cardinality()).abs() < 1e-6);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
