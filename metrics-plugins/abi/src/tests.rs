use super::*;

fn fact(i: u8) -> Fact {
    Fact {
        created_at: 1_700_000_000 + i64::from(i),
        event_id: [i; 32],
        seq: i16::from(i),
        class: 4,
        flags: 2,
        actor: [1; 32],
        subject: i.is_multiple_of(2).then_some([2; 32]),
        target_event: Some([3; 32]),
        target_coord: (i == 1).then(|| "30023:ab:post".to_owned()),
        amount_msats: (i == 2).then_some(21_000),
        expires_at: None,
        dims: vec![
            ("class".into(), "like".into()),
            ("content".into(), "🤙".into()),
        ],
    }
}

#[test]
fn facts_round_trip() {
    let facts: Vec<Fact> = (0..3).map(fact).collect();
    let mut bytes = Vec::new();
    encode_facts(&facts, &mut bytes);
    let batch = FactBatch::parse(&bytes).unwrap();
    assert_eq!(batch.len(), 3);
    for (f, v) in facts.iter().zip(batch.iter()) {
        assert_eq!(v.created_at, f.created_at);
        assert_eq!(v.event_id, &f.event_id);
        assert_eq!(v.seq, f.seq);
        assert_eq!(v.subject, f.subject.as_ref());
        assert_eq!(v.target_event, f.target_event.as_ref());
        assert_eq!(v.target_coord, f.target_coord.as_deref());
        assert_eq!(v.amount_msats, f.amount_msats);
        assert_eq!(v.expires_at, None);
        assert_eq!(v.dim("content"), Some("🤙"));
        assert_eq!(v.dim("missing"), None);
        assert_eq!(v.dims().count(), 2);
    }
    assert!(batch.check().is_ok());
}

#[test]
fn contributions_round_trip() {
    let mut w = ContributionWriter::with_capacity(2);
    w.push(0, &[9; 32], 100, 1, b"", &[]);
    w.push(3, &[8; 32], 200, -5, &[7; 80], &[("lnurl", "verified")]);
    let bytes = w.finish();
    let got = Contributions::decode(bytes.clone(), 4).unwrap();
    assert_eq!(got.len(), 2);
    let got = got.to_vec();
    assert_eq!(got[1].key.len(), MAX_KEY_LEN, "keys are cut to the maximum");
    assert_eq!(
        got[1].dims,
        vec![("lnurl".to_owned(), "verified".to_owned())]
    );
    assert_eq!(got[1].value, -5);
    assert_eq!(
        (got[0].metric, got[0].at, got[0].subject),
        (0, 100, [9; 32])
    );
    let undeclared = Contributions::decode(bytes.clone(), 3).unwrap_err().0;
    assert!(undeclared.contains("metric #3"), "{undeclared}");
}

#[test]
fn contributions_append_in_order() {
    let batch = |metric: u16| {
        let mut w = ContributionWriter::with_capacity(1);
        w.push(metric, &[1; 32], 5, 1, b"k", &[("class", "like")]);
        Contributions::decode(w.finish(), 2).unwrap()
    };
    let mut both = batch(0);
    both.append(batch(1));
    both.append(Contributions::default());
    let mut joined = ContributionWriter::with_capacity(2);
    for metric in [0, 1] {
        joined.push(metric, &[1; 32], 5, 1, b"k", &[("class", "like")]);
    }
    assert_eq!(
        both,
        Contributions::decode(joined.finish(), 2).unwrap(),
        "parts compare as one"
    );
    assert_ne!(both, batch(0));
    let metrics: Vec<u16> = both.iter().map(|c| c.metric).collect();
    assert_eq!(metrics, [0, 1]);
    assert_eq!(both.len(), 2);
    assert!(both.iter().all(|c| c.dims().eq([("class", "like")])));
}

struct OneEach;
impl Plugin for OneEach {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "one-each".into(),
            version: 1,
            abi: ABI_VERSION,
            metrics: vec![MetricInfo::new(
                "n",
                1,
                Aggregation::Count,
                "events",
                &[4],
                "x",
            )],
        }
    }
    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
        for f in facts.iter() {
            out.push(0, f.actor, f.created_at, 1, b"", &[]);
        }
        Ok(())
    }
}

#[test]
fn a_fact_is_checked_as_it_is_read() {
    let facts: Vec<Fact> = (0..3).map(fact).collect();
    assert_eq!(run_native::<OneEach>(&facts).unwrap().len(), 3);
    let mut bytes = Vec::new();
    encode_facts(&facts, &mut bytes);
    let mut longer = bytes.clone();
    longer.push(0);
    let err = run_packed::<OneEach>(&longer).unwrap_err();
    assert!(err.contains("trailing"), "{err}");
    // The last fact's dims length points past the end.
    let mut cut = bytes.clone();
    cut.truncate(bytes.len() - 3);
    let err = run_packed::<OneEach>(&cut).unwrap_err();
    assert!(err.contains("truncated"), "{err}");
    // A coordinate that is not UTF-8 (the second fact's).
    let at = bytes
        .windows(13)
        .position(|w| w == b"30023:ab:post")
        .unwrap();
    let mut bad = bytes.clone();
    bad[at] = 0xff;
    let err = run_packed::<OneEach>(&bad).unwrap_err();
    assert!(err.contains("UTF-8"), "{err}");
}

#[test]
fn garbage_is_refused_not_trusted() {
    let mut bytes = Vec::new();
    encode_facts(&[fact(1)], &mut bytes);
    for cut in [0, 4, 7] {
        assert!(FactBatch::parse(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for cut in [20, bytes.len() - 1] {
        let batch = FactBatch::parse(&bytes[..cut]).unwrap();
        assert_eq!(batch.iter().count(), 0, "cut at {cut}");
        assert!(batch.check().is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let batch = FactBatch::parse(&longer).unwrap();
    assert_eq!(batch.iter().count(), 1);
    assert!(batch.check().is_err(), "trailing bytes");
    let mut wrong_abi = bytes.clone();
    wrong_abi[0] = 9;
    assert!(
        FactBatch::parse(&wrong_abi)
            .unwrap_err()
            .0
            .contains("layout 9")
    );
    let mut huge_count = bytes.clone();
    huge_count[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(FactBatch::parse(&huge_count).is_err());
    let mut bad = ContributionWriter::with_capacity(1);
    bad.push(0, &[0; 32], 0, 1, b"", &[]);
    let mut bad = bad.finish();
    bad[4..8].copy_from_slice(&1_000_000u32.to_le_bytes());
    assert!(Contributions::decode(bad, 1).is_err());
}

#[test]
fn descriptions_are_checked() {
    let good = PluginInfo {
        name: "core".into(),
        version: 1,
        abi: ABI_VERSION,
        metrics: vec![MetricInfo::new(
            "notes_published",
            1,
            Aggregation::Count,
            "events",
            &[1],
            "x",
        )],
    };
    assert!(good.problems().is_empty());
    let mut bad = good.clone();
    bad.name = "Core Metrics".into();
    bad.abi = 2;
    bad.metrics.push(bad.metrics[0].clone());
    let problems = bad.problems().join("; ");
    assert!(problems.contains("plugin name"), "{problems}");
    assert!(problems.contains("layout 2"), "{problems}");
    assert!(problems.contains("declared twice"), "{problems}");
}
