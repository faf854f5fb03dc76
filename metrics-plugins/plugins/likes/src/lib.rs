//! `likes@2`: `likes_received@2` counts one like per reactor per note, however often the
//! reactor likes it again (the worked example of `metrics-plugins/README.md`).

use na_metrics_sdk::*;

#[derive(Debug)]
pub struct Likes;

impl Plugin for Likes {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "likes".into(),
            version: 2,
            abi: ABI_VERSION,
            metrics: vec![MetricInfo::new(
                "likes_received",
                2,
                Aggregation::Distinct,
                "likes",
                &[class::REACTION],
                "One like per reactor per note.",
            )],
        }
    }

    fn map(facts: &FactBatch<'_>, out: &mut ContributionWriter) -> Result<(), String> {
        for f in facts.iter().filter(counts) {
            let like = f.class == class::REACTION && f.dim("class") == Some("like");
            if let (true, Some(author), Some(note)) = (like, f.subject, f.target_event)
                && !f.has_flag(flag::SELF)
            {
                let key = [&f.actor[..], &note[..]].concat(); // reactor + note
                out.push(0, author, f.created_at, 1, &key, &[]);
            }
        }
        Ok(())
    }
}

na_metrics_sdk::export_plugin!(Likes);

#[cfg(test)]
mod tests {
    use super::*;
    use na_metrics_sdk::abi::{Fact, run_native};

    #[test]
    fn a_reactor_liking_a_note_twice_is_one_like() {
        let like = |actor: u8, note: u8, class: &str| Fact {
            class: class::REACTION,
            actor: [actor; 32],
            subject: Some([0xaa; 32]),
            target_event: Some([note; 32]),
            dims: vec![("class".into(), class.into())],
            ..Fact::default()
        };
        let facts = [
            like(1, 1, "like"),
            like(1, 1, "like"),
            like(1, 2, "like"),
            like(2, 1, "like"),
            like(3, 1, "dislike"),
        ];
        let keys: std::collections::BTreeSet<Vec<u8>> = run_native::<Likes>(&facts)
            .unwrap()
            .iter()
            .map(|c| c.key.to_vec())
            .collect();
        assert_eq!(
            keys.len(),
            3,
            "reactor 1 on notes 1 and 2, reactor 2 on note 1"
        );
    }
}
