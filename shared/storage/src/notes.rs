//! What the per-note drilldown reads: the event's author and the facts that target it.

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

use crate::Result;
use crate::compaction::{FACT_COLUMNS, FactRow, fact_row};

/// A stored event, as interactions with it are attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteHead {
    pub author: Vec<u8>,
    pub kind: i32,
    pub created_at: DateTime<Utc>,
}

/// The author, kind and time of the stored event `id`; `None` when it is not stored.
///
/// # Errors
/// Database errors.
pub async fn note_head(client: &impl GenericClient, id: &[u8]) -> Result<Option<NoteHead>> {
    Ok(client
        .query_opt(
            "SELECT pubkey, kind, created_at FROM event_authors WHERE id = $1",
            &[&id],
        )
        .await?
        .map(|r| NoteHead {
            author: r.get(0),
            kind: r.get(1),
            created_at: r.get(2),
        }))
}

/// Where retained events and facts start (`None`: raw retention has dropped nothing).
///
/// # Errors
/// Database errors.
pub async fn raw_from(client: &impl GenericClient) -> Result<Option<DateTime<Utc>>> {
    Ok(client
        .query_one("SELECT raw_from FROM raw_horizon", &[])
        .await?
        .get(0))
}

/// How many facts target `id` in `[from, to)`, counted up to `cap` (a drilldown's cost).
///
/// # Errors
/// Database errors.
pub async fn note_fact_count(
    client: &impl GenericClient,
    id: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cap: i64,
) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM (
                 SELECT 1 FROM facts
                 WHERE target_event = $1 AND created_at >= $2 AND created_at < $3
                 LIMIT $4) capped",
            &[&id, &from, &to, &cap],
        )
        .await?
        .get(0))
}

/// The facts of `classes` (empty: all) that target `id` in `[from, to)`.
///
/// # Errors
/// Database errors.
pub async fn note_facts(
    client: &impl GenericClient,
    id: &[u8],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    classes: &[i16],
) -> Result<Vec<FactRow>> {
    let rows = client
        .query(
            &format!(
                "SELECT {FACT_COLUMNS} FROM facts
                 WHERE target_event = $1 AND created_at >= $2 AND created_at < $3
                   AND (cardinality($4::int2[]) = 0 OR class = ANY($4))"
            ),
            &[&id, &from, &to, &classes],
        )
        .await?;
    Ok(rows.iter().map(|r| fact_row(r, 1, 0, 0, 0)).collect())
}
