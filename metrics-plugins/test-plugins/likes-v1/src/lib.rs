//! `likes@1`: `likes_received@1` counts every like, repeats included — the first version of
//! the metric that `likes@2` (metrics-plugins/plugins/likes) refines.

use na_metrics_sdk::*;

#[derive(Debug)]
pub struct LikesV1;

impl Plugin for LikesV1 {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "likes".into(),
            version: 1,
            abi: ABI_VERSION,
            metrics: vec![MetricInfo::new(
                "likes_received",
                1,
                Aggregation::Count,
                "likes",
                &[class::REACTION],
                "Every like of the pubkey's events by others.",
            )],
        }
    }

    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
        for f in facts.iter().filter(counts) {
            let like = f.class == class::REACTION && f.dim("class") == Some("like");
            if let (true, Some(author)) = (like, f.subject)
                && !f.has_flag(flag::SELF)
            {
                out.push(0, author, f.created_at, 1, b"", &[]);
            }
        }
        Ok(())
    }
}

na_metrics_sdk::export_plugin!(LikesV1);
