//! Folding bucket rows and live-delta contributions into one value per metric and group.

use std::collections::HashMap;

use na_metrics_abi::{Aggregation, Contribution};
use na_sketch::{DistinctSketch, STANDARD_ERROR, hash_key};
use na_storage::buckets::{StoredSketch, Totals};

/// Contributions to the subject mapped from facts, by series.
pub(crate) type FromFacts = HashMap<i32, Vec<Contribution>>;

/// One metric's value within one group, as it is folded.
#[derive(Debug, Default, Clone)]
pub(crate) struct Acc {
    sum: i64,
    least: Option<i64>,
    greatest: Option<i64>,
    sketch: Option<DistinctSketch>,
    /// Distinct keys counted exactly, with their net contributions (an accumulator made
    /// by [`Acc::exact`], from facts read whole).
    keys: Option<HashMap<Vec<u8>, i64>>,
    /// Retractions that could not be applied: the value is an estimate.
    unapplied: i64,
    /// Contributions taken from the live delta (net of retractions).
    pub(crate) delta: i64,
    /// Net contributions folded in from every source: what an exact count would read.
    pub(crate) contributions: i64,
}

/// A folded value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Value {
    /// `None` for a min or max with nothing in the window.
    pub(crate) value: Option<i64>,
    pub(crate) exact: bool,
    /// Relative standard error of an approximate distinct count.
    pub(crate) relative_error: Option<f64>,
}

impl Acc {
    /// An accumulator whose distinct count is exact at any size: for contributions mapped
    /// from facts read whole (a note, a window small enough to count exactly).
    pub(crate) fn exact() -> Self {
        Acc {
            keys: Some(HashMap::new()),
            ..Acc::default()
        }
    }

    pub(crate) fn add_totals(&mut self, t: &Totals) {
        self.contributions += t.contributions;
        self.sum += t.sum;
        self.unapplied += t.unapplied;
        self.least = Some(self.least.map_or(t.least, |l| l.min(t.least)));
        self.greatest = Some(self.greatest.map_or(t.greatest, |g| g.max(t.greatest)));
    }

    pub(crate) fn add_sketch(&mut self, s: &StoredSketch) -> Result<(), na_sketch::SketchError> {
        let stored = DistinctSketch::from_stored(&s.sketch, s.key_counts.as_deref())?;
        self.unapplied += s.unapplied;
        self.contributions += s.contributions;
        match &mut self.sketch {
            Some(mine) => mine.merge(&stored),
            None => self.sketch = Some(stored),
        }
        Ok(())
    }

    /// Folds in a live-delta contribution of a fact logged with `sign`.
    pub(crate) fn add_delta(&mut self, aggregation: Aggregation, sign: i64, c: &Contribution) {
        self.delta += sign;
        self.add_contribution(aggregation, sign, c);
    }

    /// Folds in a contribution of a fact logged with `sign` (+1 for a fact read whole).
    pub(crate) fn add_contribution(
        &mut self,
        aggregation: Aggregation,
        sign: i64,
        c: &Contribution,
    ) {
        self.contributions += sign;
        match aggregation {
            Aggregation::Distinct if self.keys.is_some() => {
                if let Some(keys) = &mut self.keys {
                    *keys.entry(c.key.clone()).or_default() += sign;
                }
            }
            Aggregation::Distinct => {
                if !self
                    .sketch
                    .get_or_insert_with(DistinctSketch::default)
                    .add(hash_key(&c.key), sign)
                {
                    self.unapplied += 1;
                }
            }
            Aggregation::Min | Aggregation::Max if sign < 0 => self.unapplied += 1,
            Aggregation::Min | Aggregation::Max => {
                self.least = Some(self.least.map_or(c.value, |l| l.min(c.value)));
                self.greatest = Some(self.greatest.map_or(c.value, |g| g.max(c.value)));
            }
            _ => self.sum += sign * c.value,
        }
    }

    /// Sum of changes (count, sum, and a gauge's change over the window).
    pub(crate) fn sum(&self) -> i64 {
        self.sum
    }

    pub(crate) fn value(&self, aggregation: Aggregation) -> Value {
        let exact = self.unapplied == 0;
        match aggregation {
            Aggregation::Distinct if self.keys.is_some() => Value {
                value: Some(self.keys.iter().flatten().filter(|(_, n)| **n > 0).count() as i64),
                exact,
                relative_error: None,
            },
            Aggregation::Distinct => {
                let sketch = self.sketch.clone().unwrap_or_default();
                let approximate = !sketch.is_exact();
                Value {
                    value: Some(sketch.estimate().value as i64),
                    exact: exact && !approximate,
                    relative_error: approximate.then_some(STANDARD_ERROR),
                }
            }
            Aggregation::Min => Value {
                value: self.least,
                exact,
                relative_error: None,
            },
            Aggregation::Max => Value {
                value: self.greatest,
                exact,
                relative_error: None,
            },
            _ => Value {
                value: Some(self.sum),
                exact,
                relative_error: None,
            },
        }
    }
}

pub(crate) fn aggregation(name: &str) -> Aggregation {
    match name {
        "sum" => Aggregation::Sum,
        "min" => Aggregation::Min,
        "max" => Aggregation::Max,
        "distinct" => Aggregation::Distinct,
        "gauge" => Aggregation::Gauge,
        _ => Aggregation::Count,
    }
}

#[cfg(test)]
mod tests {
    use na_storage::buckets::Group;

    use super::*;

    fn contribution(value: i64, key: &[u8]) -> Contribution {
        Contribution {
            metric: 0,
            subject: [0; 32],
            at: 0,
            value,
            key: key.to_vec(),
            dims: vec![],
        }
    }

    #[test]
    fn sums_and_extremes_merge_snapshot_and_delta() {
        let totals = Totals {
            series: 1,
            group: Group::All,
            sum: 10,
            least: 2,
            greatest: 7,
            contributions: 3,
            unapplied: 0,
        };
        let mut a = Acc::default();
        a.add_totals(&totals);
        a.add_delta(Aggregation::Sum, 1, &contribution(5, b""));
        a.add_delta(Aggregation::Sum, -1, &contribution(3, b""));
        assert_eq!(a.value(Aggregation::Sum).value, Some(12));
        assert_eq!(a.delta, 0);
        let mut m = Acc::default();
        m.add_totals(&totals);
        m.add_contribution(Aggregation::Min, 1, &contribution(1, b""));
        assert_eq!(
            m.value(Aggregation::Min),
            Value {
                value: Some(1),
                exact: true,
                relative_error: None
            }
        );
        m.add_contribution(Aggregation::Max, -1, &contribution(7, b""));
        assert!(
            !m.value(Aggregation::Max).exact,
            "a retracted extreme makes it an estimate"
        );
        assert_eq!(Acc::default().value(Aggregation::Max).value, None);
    }

    #[test]
    fn distinct_retractions_apply_while_exact() {
        let mut a = Acc::default();
        a.add_contribution(Aggregation::Distinct, 1, &contribution(1, b"alice"));
        a.add_contribution(Aggregation::Distinct, 1, &contribution(1, b"bob"));
        a.add_contribution(Aggregation::Distinct, 1, &contribution(1, b"bob"));
        a.add_contribution(Aggregation::Distinct, -1, &contribution(1, b"bob"));
        assert_eq!(a.value(Aggregation::Distinct).value, Some(2));
        a.add_contribution(Aggregation::Distinct, -1, &contribution(1, b"alice"));
        assert_eq!(
            a.value(Aggregation::Distinct),
            Value {
                value: Some(1),
                exact: true,
                relative_error: None
            }
        );
        for i in 0..400u32 {
            a.add_contribution(Aggregation::Distinct, 1, &contribution(1, &i.to_le_bytes()));
        }
        let v = a.value(Aggregation::Distinct);
        assert!(!v.exact && v.relative_error.is_some(), "{v:?}");
        assert!((v.value.unwrap() - 401).abs() < 401 / 10, "{v:?}");
    }
}
