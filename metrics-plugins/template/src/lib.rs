//! `plugin-template@1`, a plugin of one metric, `plugin_template@1`: the sats a pubkey
//! receives in zaps that count.

use na_metrics_sdk::*;

#[derive(Debug)]
pub struct Metric;

impl Plugin for Metric {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "plugin-template".into(),
            version: 1,
            abi: ABI_VERSION,
            metrics: vec![MetricInfo::new(
                "plugin_template",
                1,
                Aggregation::Sum,
                "sats",
                &[class::ZAP],
                "Sats received in zaps that count: valid, first for their payment, not self-zaps.",
            )],
        }
    }

    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
        for f in facts.iter() {
            // Leaves out forged, duplicate-payment, deleted, expired and self zaps.
            if let Some((recipient, msats)) = zap_received(&f) {
                out.push(0, recipient, f.created_at, msats / 1000, b"", &[]);
            }
        }
        Ok(())
    }
}

na_metrics_sdk::export_plugin!(Metric);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_zap_once_and_only_when_it_counts() {
        let zap = |at| {
            Fact::of(class::ZAP, [1; 32], at)
                .subject([2; 32])
                .amount_msats(21_000)
        };
        let facts = [
            zap(10),
            zap(11).flag(flag::DUPLICATE_PAYMENT),
            zap(12).flag(flag::INVALID),
            zap(13).subject([1; 32]), // a self-zap
        ];
        let out = run_native::<Metric>(&facts).expect("the host would accept the output");
        let values: Vec<(i64, i64)> = out.iter().map(|c| (c.at, c.value)).collect();
        assert_eq!(values, [(10, 21)]);
    }
}
