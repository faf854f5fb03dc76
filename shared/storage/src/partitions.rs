//! Monthly partitions of `events` and `facts`: made ahead of time and on demand for late events.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use tokio_postgres::GenericClient;

use crate::Result;

/// Months (as `year * 12 + month0`) known to have partitions in this process.
#[derive(Debug, Default)]
pub(crate) struct PartitionCache(Mutex<HashSet<i32>>);

fn month_key(t: DateTime<Utc>) -> i32 {
    t.year() * 12 + t.month0() as i32
}

fn month_start(key: i32) -> DateTime<Utc> {
    let (y, m0) = (key.div_euclid(12), key.rem_euclid(12));
    NaiveDate::from_ymd_opt(y, m0 as u32 + 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Everything before this lives in the archive partition made by the first migration.
const ARCHIVE_END_KEY: i32 = 2021 * 12;

impl PartitionCache {
    /// Makes sure every month in `times` has its partitions, asking the database only for
    /// months this process has not seen yet.
    pub(crate) async fn ensure<C: GenericClient>(
        &self,
        client: &C,
        times: impl Iterator<Item = DateTime<Utc>>,
    ) -> Result<()> {
        let missing: Vec<i32> = {
            let known = self.0.lock().unwrap_or_else(|e| e.into_inner());
            let mut m: Vec<i32> = times
                .map(month_key)
                .filter(|k| *k >= ARCHIVE_END_KEY && !known.contains(k))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        for key in &missing {
            let start = month_start(*key);
            client
                .query_one("SELECT ensure_month_partitions($1, $1)", &[&start])
                .await?;
        }
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(missing);
        Ok(())
    }

    /// Creates partitions from this month through `months_ahead` months from now.
    pub(crate) async fn ensure_ahead<C: GenericClient>(
        &self,
        client: &C,
        months_ahead: u32,
    ) -> Result<()> {
        let now = Utc::now();
        let until = now
            .checked_add_months(Months::new(months_ahead))
            .unwrap_or(now);
        client
            .query_one(
                "SELECT ensure_month_partitions($1, $2)",
                &[&month_start(month_key(now)), &until],
            )
            .await?;
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        known.extend(month_key(now)..=month_key(until));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_keys_round_trip() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap(); // 2023-11-14
        let k = month_key(t);
        assert_eq!(month_start(k).to_rfc3339(), "2023-11-01T00:00:00+00:00");
        assert_eq!(month_start(k + 2).to_rfc3339(), "2024-01-01T00:00:00+00:00");
    }
}
