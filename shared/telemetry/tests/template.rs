//! The alarms in `infra/template.yaml` say what `na_telemetry::slo` says: each SLO's two
//! burn-rate pairs at burn x (1 - objective), on the metric and labels the code writes;
//! and the dashboard's body is JSON CloudWatch can read once its `${…}` are filled in.

#![allow(clippy::unwrap_used, reason = "tests")]

use na_telemetry::metrics::{COMPACTION_LAG_SECONDS, SLO_EVENTS, SUMMARY_ROUTE};
use na_telemetry::slo::{COMPACTION_LAG_MAX, Slo};

const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The template's resources, as (name, text) in order.
fn resources() -> Vec<(&'static str, &'static str)> {
    let body = TEMPLATE.split("\nResources:\n").nth(1).unwrap();
    let body = body.split("\nOutputs:\n").next().unwrap();
    let mut out: Vec<(&str, &str)> = Vec::new();
    let mut start = None;
    for (at, _) in body
        .match_indices('\n')
        .chain(std::iter::once((body.len(), "")))
    {
        let line = body[at..]
            .trim_start_matches('\n')
            .lines()
            .next()
            .unwrap_or("");
        let is_resource = line.len() > 2
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && !line.trim_start().starts_with('#')
            && line.ends_with(':');
        if is_resource || at == body.len() {
            if let Some((name, from)) = start {
                out.push((name, &body[from..at]));
            }
            start = is_resource.then(|| (line.trim().trim_end_matches(':'), at));
        }
    }
    out
}

fn threshold(text: &str) -> f64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Threshold: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn each_slo_has_two_burn_rate_pairs_at_its_objective() {
    let resources = resources();
    for slo in Slo::ALL {
        let label = format!("Value: {}}}", slo.name());
        let alarms: Vec<_> = resources
            .iter()
            .filter(|(_, text)| text.contains("AWS::CloudWatch::Alarm") && text.contains(&label))
            .collect();
        assert_eq!(alarms.len(), 4, "{}: {alarms:#?}", slo.name());
        let budget = 1.0 - slo.objective();
        for (name, text) in &alarms {
            assert!(
                text.contains(&format!("MetricName: {SLO_EVENTS}")),
                "{name}"
            );
            let burn = if name.contains("Page") { 14.4 } else { 6.0 };
            let expected = burn * budget;
            assert!(
                (threshold(text) - expected).abs() < 1e-9,
                "{name}: {} is not {burn} x {budget}",
                threshold(text)
            );
            // Each pair: the long window and the short one, then one composite of both.
            let composite = name
                .trim_end_matches("BurnLong")
                .trim_end_matches("BurnShort");
            let rule = resources
                .iter()
                .find(|(n, _)| *n == composite)
                .unwrap_or_else(|| panic!("no composite alarm {composite}"))
                .1;
            assert!(rule.contains(&format!("ALARM(${{{name}}})")), "{composite}");
        }
    }
    let lag = resources
        .iter()
        .find(|(n, _)| *n == "CompactionLag")
        .unwrap()
        .1;
    assert_eq!(threshold(lag), COMPACTION_LAG_MAX.as_secs_f64());
    assert!(lag.contains(&format!("MAX({COMPACTION_LAG_SECONDS})")));
}

#[test]
fn the_dashboard_body_is_json_on_the_metrics_the_code_writes() {
    let resources = resources();
    let text = resources
        .iter()
        .find(|(n, _)| *n == "SloDashboard")
        .unwrap()
        .1;
    let body = text.split("- |\n").nth(1).unwrap();
    let body = body.split("\n        - Ns:").next().unwrap();
    let filled = body
        .replace("${AWS::Region}", "us-east-1")
        .replace("${Ns}", "NostrAnalytics")
        .replace("${SummaryRoute}", SUMMARY_ROUTE);
    assert!(
        !filled.contains("${"),
        "a substitution the test does not know"
    );
    let dashboard: serde_json::Value = serde_json::from_str(&filled).unwrap();
    let widgets = dashboard["widgets"].as_array().unwrap();
    assert_eq!(widgets.len(), 6);
    for slo in Slo::ALL {
        assert!(
            filled.contains(&format!("\"slo\", \"{}\"", slo.name())),
            "{}",
            slo.name()
        );
    }
    assert!(text.contains(&format!("SummaryRoute: \"{SUMMARY_ROUTE}\"")));
}
