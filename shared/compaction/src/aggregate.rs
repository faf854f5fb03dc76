//! Folding contributions into bucket changes, in memory, before one write per bucket row.

use std::collections::HashMap;

use na_domain::Granularity;
use na_domain::granularity::Horizons;
use na_metrics_abi::{Aggregation, ContributionView, Contributions};
use na_plugin_registry::SeriesMap;
use na_sketch::{DistinctSketch, hash_key};
use na_storage::buckets::{BucketChange, BucketKey, Combine, DistinctBucket};

#[derive(Debug, Default)]
struct Additive {
    value: i64,
    contributions: i64,
    unapplied: i32,
    seen_value: bool,
}

/// Contributions folded per bucket row, ready to write.
#[derive(Debug, Default)]
pub struct Aggregate {
    additive: HashMap<(Granularity, Combine, BucketKey), Additive>,
    /// Net contributions per key hash.
    distinct: HashMap<(Granularity, BucketKey), HashMap<i64, i64>>,
    gauges: HashMap<(i32, [u8; 32]), i64>,
    /// Contributions folded in.
    pub contributions: u64,
}

fn dims_key(c: &ContributionView<'_>) -> String {
    if !c.has_dims() {
        return "{}".into();
    }
    let map: serde_json::Map<String, serde_json::Value> = c
        .dims()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl Aggregate {
    /// Folds in contributions of facts logged with `sign` (+1 added, -1 retracted).
    /// Contributions to a metric the registry has no series for are ignored.
    pub fn add(
        &mut self,
        series: &SeriesMap,
        horizons: &Horizons,
        sign: i64,
        contributions: &Contributions,
    ) {
        for c in contributions.iter() {
            let Some((id, aggregation)) = series.get(c.metric) else {
                continue;
            };
            self.contributions += 1;
            let dims = dims_key(&c);
            if aggregation == Aggregation::Gauge {
                *self.gauges.entry((id, *c.subject)).or_default() += sign * c.value;
            }
            let hash = (aggregation == Aggregation::Distinct).then(|| hash_key(c.key));
            for g in Granularity::ALL {
                let bucket = g.bucket(c.at);
                if !horizons.keeps(g, bucket) {
                    continue;
                }
                let key = BucketKey {
                    series: id,
                    subject: *c.subject,
                    bucket,
                    dims: dims.clone(),
                };
                if let Some(hash) = hash {
                    *self
                        .distinct
                        .entry((g, key))
                        .or_default()
                        .entry(hash)
                        .or_default() += sign;
                    continue;
                }
                let combine = match aggregation {
                    Aggregation::Min => Combine::Least,
                    Aggregation::Max => Combine::Greatest,
                    _ => Combine::Add,
                };
                let acc = self.additive.entry((g, combine, key)).or_default();
                acc.contributions += sign;
                match combine {
                    Combine::Add => acc.value += sign * c.value,
                    // A retracted extreme cannot be taken back out of a min or max.
                    _ if sign < 0 => acc.unapplied += 1,
                    Combine::Least if acc.seen_value => acc.value = acc.value.min(c.value),
                    Combine::Greatest if acc.seen_value => acc.value = acc.value.max(c.value),
                    _ => {
                        acc.value = c.value;
                        acc.seen_value = true;
                    }
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.additive.is_empty() && self.distinct.is_empty() && self.gauges.is_empty()
    }

    /// Changes to count, sum, gauge, min and max buckets, per granularity.
    pub fn changes(&self, g: Granularity) -> Vec<BucketChange> {
        self.additive
            .iter()
            .filter(|((gr, combine, _), a)| {
                *gr == g
                    && (a.contributions != 0
                        || a.unapplied != 0
                        || match combine {
                            Combine::Add => a.value != 0,
                            _ => a.seen_value,
                        })
            })
            .map(|((_, combine, key), a)| BucketChange {
                key: key.clone(),
                combine: *combine,
                value: match combine {
                    Combine::Add => a.value,
                    // Only retractions: leave the stored extreme as it is.
                    Combine::Least if !a.seen_value => i64::MAX,
                    Combine::Greatest if !a.seen_value => i64::MIN,
                    _ => a.value,
                },
                contributions: a.contributions,
                unapplied: a.unapplied,
            })
            .collect()
    }

    /// The distinct bucket rows a granularity touches.
    pub fn distinct_keys(&self, g: Granularity) -> Vec<BucketKey> {
        self.distinct
            .iter()
            .filter(|((gr, _), keys)| *gr == g && keys.values().any(|n| *n != 0))
            .map(|((_, k), _)| k.clone())
            .collect()
    }

    /// The distinct rows of `keys` with this batch applied to what is `stored`.
    ///
    /// # Errors
    /// A stored sketch that cannot be read.
    pub fn merged_distinct(
        &self,
        g: Granularity,
        keys: &[BucketKey],
        stored: Vec<(usize, DistinctBucket)>,
    ) -> Result<Vec<DistinctBucket>, na_sketch::SketchError> {
        let mut current: Vec<Option<DistinctBucket>> = vec![None; keys.len()];
        for (i, row) in stored {
            current[i] = Some(row);
        }
        keys.iter()
            .zip(current)
            .map(|(key, row)| {
                let (mut sketch, mut contributions, mut unapplied) = match &row {
                    Some(r) => (
                        DistinctSketch::from_stored(&r.sketch, r.key_counts.as_deref())?,
                        r.contributions,
                        r.unapplied,
                    ),
                    None => (DistinctSketch::default(), 0, 0),
                };
                let mut deltas: Vec<(i64, i64)> = self.distinct[&(g, key.clone())]
                    .iter()
                    .map(|(h, n)| (*h, *n))
                    .collect();
                // Additions first: a key retracted and re-added in one batch nets out anyway.
                deltas.sort_unstable_by_key(|&(h, n)| (n < 0, h));
                for (hash, n) in deltas {
                    contributions += n;
                    if !sketch.add(hash, n) {
                        unapplied += n.unsigned_abs().min(i32::MAX as u64) as i32;
                    }
                }
                Ok(DistinctBucket {
                    key: key.clone(),
                    value: sketch.estimate().value as i64,
                    contributions,
                    sketch: sketch.to_hll_bytes(),
                    key_counts: sketch.counts_bytes(),
                    unapplied,
                })
            })
            .collect()
    }

    /// Level changes per gauge series and subject.
    pub fn gauge_changes(&self) -> Vec<(i32, [u8; 32], i64)> {
        self.gauges
            .iter()
            .filter(|(_, d)| **d != 0)
            .map(|((s, subject), d)| (*s, *subject, *d))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use na_domain::Granularity;
    use na_metrics_abi::{Aggregation, ContributionWriter, Contributions, MetricInfo};
    use na_storage::buckets::Combine;
    use na_storage::compaction_state::Series;

    use super::{Aggregate, Horizons, SeriesMap};

    fn series(aggs: &[Aggregation]) -> SeriesMap {
        let declared: Vec<MetricInfo> = aggs
            .iter()
            .map(|a| MetricInfo::new("m", 1, *a, "u", &[], "d"))
            .collect();
        let rows: Vec<Series> = (0..aggs.len() as i32)
            .map(|i| Series {
                metric_index: i,
                series: 100 + i,
                aggregation: String::new(),
            })
            .collect();
        SeriesMap::new(&rows, &declared)
    }

    /// Contributions `(metric, at, value, key)` to subject `[1; 32]`.
    fn c(entries: &[(u16, i64, i64, &[u8])]) -> Contributions {
        let mut w = ContributionWriter::with_capacity(entries.len());
        for (metric, at, value, key) in entries {
            w.push(*metric, &[1; 32], *at, *value, key, &[]);
        }
        Contributions::decode(w.finish(), usize::from(u16::MAX)).unwrap()
    }

    #[test]
    fn a_retraction_and_its_addition_in_one_batch_net_out() {
        let s = series(&[Aggregation::Count, Aggregation::Sum]);
        let mut a = Aggregate::default();
        a.add(
            &s,
            &Horizons::default(),
            1,
            &c(&[(0, 90, 1, b""), (1, 90, 500, b"")]),
        );
        a.add(
            &s,
            &Horizons::default(),
            -1,
            &c(&[(0, 90, 1, b""), (1, 90, 200, b"")]),
        );
        let day = a.changes(Granularity::Day);
        // The count nets to nothing; the sum keeps its difference with no net contribution.
        assert_eq!(day.len(), 1, "{day:?}");
        assert_eq!(
            (day[0].key.series, day[0].value, day[0].contributions),
            (101, 300, 0)
        );
    }

    #[test]
    fn min_and_max_keep_extremes_and_count_what_they_cannot_retract() {
        let s = series(&[Aggregation::Min, Aggregation::Max]);
        let mut a = Aggregate::default();
        let facts = c(&[
            (0, 10, 7, b""),
            (0, 20, 3, b""),
            (1, 10, 7, b""),
            (1, 20, 3, b""),
        ]);
        a.add(&s, &Horizons::default(), 1, &facts);
        a.add(&s, &Horizons::default(), -1, &c(&[(0, 30, 3, b"")]));
        let mut day = a.changes(Granularity::Day);
        day.sort_by_key(|c| c.key.series);
        assert_eq!(
            (day[0].combine, day[0].value, day[0].unapplied),
            (Combine::Least, 3, 1)
        );
        assert_eq!(
            (day[1].combine, day[1].value, day[1].unapplied),
            (Combine::Greatest, 7, 0)
        );
    }

    #[test]
    fn buckets_before_a_horizon_are_not_written() {
        let s = series(&[Aggregation::Count]);
        let mut a = Aggregate::default();
        let horizons = Horizons {
            minute: Some(86_400),
            hour: None,
        };
        a.add(
            &s,
            &horizons,
            1,
            &c(&[(0, 600, 1, b""), (0, 86_460, 1, b"")]),
        );
        assert_eq!(a.changes(Granularity::Minute).len(), 1);
        assert_eq!(a.changes(Granularity::Hour).len(), 2);
        assert_eq!(a.changes(Granularity::Day).len(), 2);
    }
}
