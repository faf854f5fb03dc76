//! Gauges at an instant: the stored level minus the changes after the instant, read from
//! the coarsest buckets that tile them — never a sum from the beginning of time.

use chrono::{DateTime, Utc};

use crate::compaction::{Granularity, horizons};
use crate::{Db, Result};

/// A gauge's value and the instant it is exact for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GaugeReading {
    pub value: i64,
    /// The instant asked for, rounded down to the finest buckets kept there (a minute within
    /// the minute horizon, else an hour, else a day): the value counts every change before it.
    pub at: DateTime<Utc>,
    pub resolution: Granularity,
}

fn time(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl Db {
    /// The value of gauge `series` for `subject` just before `at` (as far as compaction has
    /// applied the log).
    ///
    /// # Errors
    /// Database errors.
    pub async fn gauge_at(
        &self,
        series: i32,
        subject: &[u8],
        at: DateTime<Utc>,
    ) -> Result<GaugeReading> {
        let conn = self.conn().await?;
        let kept = horizons(&**conn).await?;
        let from = |g| kept.iter().find(|(x, _)| *x == g).and_then(|(_, t)| *t);
        let resolution = [Granularity::Minute, Granularity::Hour]
            .into_iter()
            .find(|g| from(*g).is_none_or(|f| at.timestamp() >= f))
            .unwrap_or(Granularity::Day);
        let at = resolution.bucket(at.timestamp());
        let (hour_at, day_at) = (
            time(Granularity::Hour.ceil(at)),
            time(Granularity::Day.ceil(at)),
        );
        let at = time(at);
        let row = conn
            .query_one(
                "SELECT (coalesce((SELECT level FROM gauge_levels WHERE series = $1 AND subject = $2), 0)
                      - coalesce((SELECT sum(value) FROM buckets_minute
                                  WHERE series = $1 AND subject = $2 AND bucket >= $3 AND bucket < $4), 0)
                      - coalesce((SELECT sum(value) FROM buckets_hour
                                  WHERE series = $1 AND subject = $2 AND bucket >= $4 AND bucket < $5), 0)
                      - coalesce((SELECT sum(value) FROM buckets_day
                                  WHERE series = $1 AND subject = $2 AND bucket >= $5), 0))::bigint",
                &[&series, &subject, &at, &hour_at, &day_at],
            )
            .await?;
        Ok(GaugeReading {
            value: row.get(0),
            at,
            resolution,
        })
    }
}
