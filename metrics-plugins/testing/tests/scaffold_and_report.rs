//! `na-plugins new`'s checks, and how a report is compared with a golden file.
#![allow(clippy::unwrap_used, reason = "a test: a failure should stop it")]

use na_metrics_abi::{Aggregation, ContributionWriter, Contributions, MetricInfo, PluginInfo};
use na_plugin_testing::Report;
use na_plugin_testing::scaffold::{Source, check_name, new_crate};

#[test]
fn a_new_crate_needs_a_plugin_name_and_an_empty_directory() {
    for bad in ["", "Tips", "1tips", "tips_v2", "tips!", &"t".repeat(65)] {
        assert!(check_name(bad).is_err(), "{bad:?} was accepted");
    }
    check_name("tips-v2").unwrap();

    let dir = std::env::temp_dir().join(format!("na-scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let written = new_crate(&dir, "tips-v2", &Source::Checkout(root.clone())).unwrap();
    assert_eq!(written.len(), 7);
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(r#"name: "tips-v2".into()"#) && lib.contains(r#""tips_v2","#),
        "{lib}"
    );
    assert!(!lib.contains("plugin_template") && !lib.contains("plugin-template"));
    let expected = Report::load(dir.join("fixtures/expected.json")).unwrap();
    assert_eq!(expected.plugin, "tips-v2@1");
    assert!(expected.metrics.contains_key("tips_v2@1"));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!(
            "{:?}",
            root.join("metrics-plugins/sdk").display().to_string()
        )),
        "{manifest}"
    );

    let again = new_crate(&dir, "tips-v2", &Source::Checkout(root)).unwrap_err();
    assert!(again.to_string().contains("is not empty"), "{again}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn report(aggregation: Aggregation, values: &[([u8; 32], i64, &[u8])]) -> Report {
    let info = PluginInfo {
        name: "t".into(),
        version: 1,
        abi: na_metrics_abi::ABI_VERSION,
        metrics: vec![MetricInfo::new("m", 1, aggregation, "x", &[1], "test")],
    };
    let mut w = ContributionWriter::with_capacity(values.len());
    for (subject, value, key) in values {
        w.push(0, subject, 0, *value, key, &[]);
    }
    Report::new(
        &info,
        values.len(),
        &Contributions::decode(w.finish(), 1).unwrap(),
    )
}

#[test]
fn a_report_folds_as_queries_do_and_names_each_difference() {
    let (a, b) = ([1; 32], [2; 32]);
    let distinct = report(
        Aggregation::Distinct,
        &[(a, 1, b"k1"), (a, 1, b"k1"), (a, 1, b"k2"), (b, 1, b"k1")],
    );
    let m = &distinct.metrics["m@1"];
    assert_eq!((m.total, m.contributions, m.by_subject.len()), (3, 4, 2));
    let max = report(Aggregation::Max, &[(a, 5, b""), (a, 9, b""), (b, 7, b"")]);
    assert_eq!(max.metrics["m@1"].total, 9);

    let sum = report(Aggregation::Sum, &[(a, 5, b""), (b, 7, b"")]);
    assert!(sum.differences(&sum).is_empty());
    let other = report(Aggregation::Sum, &[(a, 5, b""), (b, 8, b"")]);
    assert_eq!(
        sum.differences(&other),
        [
            "m@1: total 12 (expected 13)".to_owned(),
            format!("m@1: {}: 7 (expected 8)", hex::encode(b)),
        ]
    );
}
