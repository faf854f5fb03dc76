//! The canonical write path: one transaction per batch, idempotent on the event id.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use na_domain::follows::FollowUpdate;
use na_domain::{EventId, Fact, FactClass, VerifiedEvent};
use tokio_postgres::types::Json;
use tracing::instrument;

use crate::batch::{BatchOutcome, IngestBatch, NewEvent};
use crate::timestamp;
use crate::{Db, Result};
use crate::{fact_changes, follow_lists, replaceable_heads};

const INSERT_EVENTS: &str = "
    INSERT INTO events (id, pubkey, created_at, kind, tags, content, sig, seen_on)
    SELECT u.id, u.pubkey, u.created_at, u.kind, u.tags, u.content, u.sig, u.seen_on::smallint[]
    FROM unnest($1::bytea[], $2::bytea[], $3::timestamptz[], $4::int[], $5::jsonb[], $6::text[],
                $7::bytea[], $8::text[]) AS u(id, pubkey, created_at, kind, tags, content, sig, seen_on)
    ON CONFLICT (created_at, id) DO NOTHING
    RETURNING id";

/// Provenance for events that were already stored: add relays not yet recorded.
const ADD_SEEN_ON: &str = "
    UPDATE events e
    SET seen_on = (SELECT array_agg(DISTINCT r ORDER BY r) FROM unnest(e.seen_on || u.seen_on::smallint[]) AS r)
    FROM unnest($1::bytea[], $2::timestamptz[], $3::text[]) AS u(id, created_at, seen_on)
    WHERE e.created_at = u.created_at AND e.id = u.id AND NOT u.seen_on::smallint[] <@ e.seen_on";

const INSERT_AUTHORS: &str = "
    INSERT INTO event_authors (id, pubkey, kind, created_at)
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int[], $4::timestamptz[])
    ON CONFLICT DO NOTHING";

const INSERT_TOMBSTONES: &str = "
    INSERT INTO tombstones (deletion_id, deleter, target_event, target_coord, created_at)
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::timestamptz[])
    ON CONFLICT DO NOTHING";

/// Writers take turns: resolution reads what other batches wrote, so two batches must not
/// each miss the other's uncommitted half of a (reply, parent) pair.
pub(crate) const WRITER_LOCK: &str = "SELECT pg_advisory_xact_lock(7413001)";

const ADD_COUNTERS: &str = "
    INSERT INTO ingest_counters (relay_id, outcome, count)
    SELECT * FROM unnest($1::smallint[], $2::text[], $3::bigint[])
    ON CONFLICT (relay_id, outcome) DO UPDATE SET count = ingest_counters.count + EXCLUDED.count";

const ADVANCE_WATERMARKS: &str = "
    INSERT INTO ingest_watermarks (relay_id, watermark)
    SELECT * FROM unnest($1::smallint[], $2::timestamptz[])
    ON CONFLICT (relay_id) DO UPDATE
        SET watermark = greatest(ingest_watermarks.watermark, EXCLUDED.watermark), updated_at = now()";

impl Db {
    /// Where a bulk import of `source` stopped: bytes read and lines, if it ever started.
    ///
    /// # Errors
    /// Any database error.
    pub async fn import_progress(&self, source: &str) -> Result<Option<(i64, i64)>> {
        let conn = self.conn().await?;
        Ok(conn
            .query_opt(
                "SELECT offset_bytes, lines FROM imports WHERE source = $1",
                &[&source],
            )
            .await?
            .map(|r| (r.get(0), r.get(1))))
    }

    /// Stores a batch: new events and their facts, provenance for events already stored,
    /// counters, and watermarks, in one transaction. Replaying a batch stores nothing twice.
    ///
    /// # Errors
    /// Any database error; nothing of the batch is committed then.
    #[instrument(skip_all, err, fields(events = batch.events.len()))]
    pub async fn store_batch(&self, batch: &IngestBatch) -> Result<BatchOutcome> {
        let mut conn = self.conn().await?;
        let mut events = merge_duplicates(&batch.events);
        let repeated_in_batch = events
            .iter()
            .map(|e| e.relays.len() as u64 - 1)
            .sum::<u64>();
        self.partitions
            .ensure(
                &**conn,
                events.iter().map(|e| timestamp(e.event.created_at)),
            )
            .await?;

        let tx = conn.transaction().await?;
        // A batch lost in a crash is lost whole, watermark included, so the next run
        // re-fetches it: durability of each commit is not needed, only atomicity.
        tx.batch_execute("SET LOCAL synchronous_commit = off")
            .await?;
        tx.execute(WRITER_LOCK, &[]).await?;
        let mut outcome = BatchOutcome {
            duplicates: repeated_in_batch,
            ..Default::default()
        };
        let mut tallies: HashMap<(i16, &'static str), i64> = HashMap::new();
        for t in &batch.rejected {
            *tallies.entry((t.relay_id, t.outcome)).or_default() += t.count;
        }
        for known in past_raw_horizon(&tx, &mut events).await? {
            // Its repeats within the batch are in `repeated_in_batch` already.
            outcome.duplicates += 1;
            for r in &known.relays {
                *tallies.entry((*r, "duplicate")).or_default() += 1;
            }
        }

        if !events.is_empty() {
            let ids: Vec<&[u8]> = events.iter().map(|e| &e.event.id[..]).collect();
            let pubkeys: Vec<&[u8]> = events.iter().map(|e| &e.event.pubkey[..]).collect();
            let times: Vec<DateTime<Utc>> = events
                .iter()
                .map(|e| timestamp(e.event.created_at))
                .collect();
            let kinds: Vec<i32> = events.iter().map(|e| i32::from(e.event.kind)).collect();
            let tags: Vec<Json<&Vec<Vec<String>>>> =
                events.iter().map(|e| Json(&e.event.tags)).collect();
            let contents: Vec<&str> = events.iter().map(|e| e.event.content.as_str()).collect();
            let sigs: Vec<&[u8]> = events.iter().map(|e| &e.event.sig[..]).collect();
            let seen: Vec<String> = events.iter().map(|e| pg_array(&e.relays)).collect();
            let stmt = tx.prepare_cached(INSERT_EVENTS).await?;
            let rows = tx
                .query(
                    &stmt,
                    &[
                        &ids, &pubkeys, &times, &kinds, &tags, &contents, &sigs, &seen,
                    ],
                )
                .await?;
            let inserted: HashSet<EventId> = rows
                .iter()
                .filter_map(|row| EventId::try_from(row.get::<_, &[u8]>(0)).ok())
                .collect();
            let (new, known): (Vec<&Merged<'_>>, Vec<&Merged<'_>>) =
                events.iter().partition(|e| inserted.contains(&e.event.id));
            if !known.is_empty() {
                let ids: Vec<&[u8]> = known.iter().map(|e| &e.event.id[..]).collect();
                let times: Vec<DateTime<Utc>> = known
                    .iter()
                    .map(|e| timestamp(e.event.created_at))
                    .collect();
                let seen: Vec<String> = known.iter().map(|e| pg_array(&e.relays)).collect();
                let stmt = tx.prepare_cached(ADD_SEEN_ON).await?;
                tx.execute(&stmt, &[&ids, &times, &seen]).await?;
            }
            let new: Vec<&NewEvent> = new.into_iter().map(|e| e.new).collect();
            record_authors(&tx, &new).await?;
            for e in &events {
                let is_new = inserted.contains(&e.event.id);
                // The first relay gets the acceptance; every other delivery is a duplicate.
                let (first, rest) = e.relays.split_first().unwrap_or((&0, &[]));
                *tallies
                    .entry((*first, if is_new { "accepted" } else { "duplicate" }))
                    .or_default() += 1;
                for r in rest {
                    *tallies.entry((*r, "duplicate")).or_default() += 1;
                }
            }
            outcome.duplicates += (events.len() - new.len()) as u64;
            replaceable_heads::update(&tx, &new).await?;
            let follow_updates = follow_lists::apply(&tx, &new).await?;
            let facts = facts_to_insert(&new, &follow_updates);
            outcome.facts = insert_facts(&tx, &facts).await?;
            let new_ids: Vec<&[u8]> = new.iter().map(|e| &e.event.id[..]).collect();
            let stmt = tx.prepare_cached(&fact_changes::MARK_MENTIONS).await?;
            tx.execute(&stmt, &[&new_ids]).await?;
            apply_deletions(&tx, &new).await?;
            mark_duplicate_payments(&tx, &new).await?;
            outcome.inserted = new.iter().map(|e| e.event.id).collect();
        }

        if !tallies.is_empty() {
            let (mut relays, mut names, mut counts) = (Vec::new(), Vec::new(), Vec::new());
            for ((relay, outcome), count) in tallies {
                relays.push(relay);
                names.push(outcome);
                counts.push(count);
            }
            let stmt = tx.prepare_cached(ADD_COUNTERS).await?;
            tx.execute(&stmt, &[&relays, &names, &counts]).await?;
        }
        if !batch.watermarks.is_empty() {
            let (relays, marks): (Vec<i16>, Vec<DateTime<Utc>>) =
                batch.watermarks.iter().copied().unzip();
            let stmt = tx.prepare_cached(ADVANCE_WATERMARKS).await?;
            tx.execute(&stmt, &[&relays, &marks]).await?;
        }
        if let Some(p) = &batch.import {
            tx.execute(
                "INSERT INTO imports (source, offset_bytes, lines, finished_at)
                 VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END)
                 ON CONFLICT (source) DO UPDATE SET offset_bytes = $2, lines = $3,
                     finished_at = CASE WHEN $4 THEN now() END, updated_at = now()",
                &[&p.source, &p.offset, &p.lines, &p.finished],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Ids and times of the stored events of `kinds` created at or after `since`: our side
    /// of a NIP-77 reconciliation.
    ///
    /// # Errors
    /// Any database error.
    pub async fn stored_ids(
        &self,
        kinds: &[u16],
        since: DateTime<Utc>,
    ) -> Result<Vec<(EventId, i64)>> {
        let conn = self.conn().await?;
        let kinds: Vec<i32> = kinds.iter().map(|k| i32::from(*k)).collect();
        let rows = conn
            .query(
                "SELECT id, extract(epoch FROM created_at)::bigint FROM events
                 WHERE created_at >= $1 AND kind = ANY($2)",
                &[&since, &kinds],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((EventId::try_from(r.get::<_, &[u8]>(0)).ok()?, r.get(1))))
            .collect())
    }

    /// NIP-40: flags expired the facts whose expiration has come by `now`, logged so that
    /// compaction retracts them. Returns how many facts it flagged.
    ///
    /// # Errors
    /// Any database error.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(WRITER_LOCK, &[]).await?;
        let stmt = tx.prepare_cached(&fact_changes::EXPIRE_DUE).await?;
        // Each expired fact logs a -1 and a +1 row.
        let logged = tx.execute(&stmt, &[&now]).await?;
        tx.commit().await?;
        Ok(logged / 2)
    }

    /// Creates partitions for the coming months (ingest calls this at start-up).
    ///
    /// # Errors
    /// Any database error.
    pub async fn ensure_partitions_ahead(&self, months: u32) -> Result<()> {
        let conn = self.conn().await?;
        self.partitions.ensure_ahead(&**conn, months).await
    }
}

/// Stores who wrote the new events, then re-attributes facts that were waiting for them.
async fn record_authors(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<&[u8]> = events.iter().map(|e| &e.event.id[..]).collect();
    let pubkeys: Vec<&[u8]> = events.iter().map(|e| &e.event.pubkey[..]).collect();
    let kinds: Vec<i32> = events.iter().map(|e| i32::from(e.event.kind)).collect();
    let times: Vec<DateTime<Utc>> = events
        .iter()
        .map(|e| timestamp(e.event.created_at))
        .collect();
    let stmt = tx.prepare_cached(INSERT_AUTHORS).await?;
    tx.execute(&stmt, &[&ids, &pubkeys, &kinds, &times]).await?;
    let stmt = tx.prepare_cached(&fact_changes::REATTRIBUTE).await?;
    tx.execute(&stmt, &[&ids]).await?;
    Ok(())
}

/// Takes out of `events` those from before the raw horizon (their partitions were dropped)
/// whose ids were stored before — they are duplicates, already counted — and gives the others
/// their partitions back. Run under the writer lock, which raw retention takes too.
async fn past_raw_horizon<'a>(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &mut Vec<Merged<'a>>,
) -> Result<Vec<Merged<'a>>> {
    let raw_from: Option<DateTime<Utc>> = tx
        .query_one("SELECT raw_from FROM raw_horizon", &[])
        .await?
        .get(0);
    let Some(raw_from) = raw_from else {
        return Ok(Vec::new());
    };
    let past = |e: &Merged<'_>| timestamp(e.event.created_at) < raw_from;
    let ids: Vec<&[u8]> = events
        .iter()
        .filter(|e| past(e))
        .map(|e| &e.event.id[..])
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let seen: HashSet<Vec<u8>> = tx
        .query("SELECT id FROM event_authors WHERE id = ANY($1)", &[&ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (known, kept): (Vec<Merged<'a>>, Vec<Merged<'a>>) = std::mem::take(events)
        .into_iter()
        .partition(|e| past(e) && seen.contains(&e.event.id[..]));
    *events = kept;
    let mut months: Vec<DateTime<Utc>> = events
        .iter()
        .filter(|e| past(e))
        .map(|e| timestamp(e.event.created_at))
        .collect();
    months.sort_unstable();
    months.dedup();
    for at in months {
        tx.query_one("SELECT ensure_month_partitions($1, $1)", &[&at])
            .await?;
    }
    Ok(known)
}

/// Records the tombstones of new deletions and applies every tombstone that now meets its
/// target (the target may have come first, or just now).
async fn apply_deletions(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<()> {
    let (mut ids, mut deleters, mut target_events, mut target_coords, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for e in events
        .iter()
        .filter(|e| e.event.kind == na_domain::kinds::DELETION)
    {
        for f in e
            .facts
            .iter()
            .filter(|f| f.class == na_domain::FactClass::Deletion)
        {
            ids.push(&e.event.id[..]);
            deleters.push(&e.event.pubkey[..]);
            target_events.push(f.target_event().map(|t| &t[..]));
            target_coords.push(f.target_coordinate());
            times.push(timestamp(e.event.created_at));
        }
    }
    if !ids.is_empty() {
        let stmt = tx.prepare_cached(INSERT_TOMBSTONES).await?;
        tx.execute(
            &stmt,
            &[&ids, &deleters, &target_events, &target_coords, &times],
        )
        .await?;
    }
    let new_ids: Vec<&[u8]> = events.iter().map(|e| &e.event.id[..]).collect();
    let stmt = tx.prepare_cached(&fact_changes::APPLY_TOMBSTONES).await?;
    tx.execute(&stmt, &[&ids, &new_ids]).await?;
    Ok(())
}

async fn mark_duplicate_payments(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<()> {
    let hashes: Vec<&str> = events
        .iter()
        .flat_map(|e| &e.facts)
        .filter(|f| {
            f.class == na_domain::FactClass::Zap && !f.flags.has(na_domain::FactFlags::INVALID)
        })
        .filter_map(|f| f.dims.as_ref()?.get("payment_hash")?.as_str())
        .collect();
    if hashes.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(&fact_changes::MARK_DUPLICATE_PAYMENTS)
        .await?;
    tx.execute(&stmt, &[&hashes]).await?;
    Ok(())
}

/// The facts of the new events, with each follow list's own fact annotated by how it was
/// taken and followed by the flows it produced.
fn facts_to_insert<'a>(
    events: &[&'a NewEvent],
    follow_updates: &'a HashMap<EventId, FollowUpdate>,
) -> Vec<(&'a VerifiedEvent, Cow<'a, Fact>)> {
    let mut out = Vec::new();
    for e in events {
        let update = follow_updates.get(&e.event.id);
        for f in &e.facts {
            match update {
                Some(u) if f.class == FactClass::FollowList => {
                    let mut annotated = f.clone();
                    annotated.dims = Some(u.list_dims(&e.event));
                    out.push((&e.event, Cow::Owned(annotated)));
                }
                _ => out.push((&e.event, Cow::Borrowed(f))),
            }
        }
        for f in update.iter().flat_map(|u| &u.facts) {
            out.push((&e.event, Cow::Borrowed(f)));
        }
    }
    out
}

async fn insert_facts(
    tx: &deadpool_postgres::Transaction<'_>,
    facts: &[(&VerifiedEvent, Cow<'_, Fact>)],
) -> Result<u64> {
    let n = facts.len();
    if n == 0 {
        return Ok(0);
    }
    let mut times = Vec::with_capacity(n);
    let mut ids: Vec<&[u8]> = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut classes = Vec::with_capacity(n);
    let mut actors: Vec<&[u8]> = Vec::with_capacity(n);
    let mut subjects: Vec<Option<&[u8]>> = Vec::with_capacity(n);
    let mut target_events: Vec<Option<&[u8]>> = Vec::with_capacity(n);
    let mut target_coords: Vec<Option<&str>> = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    let mut flags = Vec::with_capacity(n);
    let mut dims: Vec<Option<Json<&serde_json::Value>>> = Vec::with_capacity(n);
    let mut expiries: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(n);
    for (event, f) in facts {
        times.push(timestamp(event.created_at));
        ids.push(&event.id[..]);
        seqs.push(f.seq);
        classes.push(f.class.as_i16());
        actors.push(&f.actor[..]);
        subjects.push(f.subject.as_ref().map(|s| &s[..]));
        target_events.push(f.target_event().map(|t| &t[..]));
        target_coords.push(f.target_coordinate());
        amounts.push(f.amount_msats);
        flags.push(f.flags.0);
        dims.push(f.dims.as_ref().map(Json));
        expiries.push(f.expires_at.map(timestamp));
    }
    let stmt = tx.prepare_cached(&fact_changes::INSERT_FACTS).await?;
    Ok(tx
        .execute(
            &stmt,
            &[
                &times,
                &ids,
                &seqs,
                &classes,
                &actors,
                &subjects,
                &target_events,
                &target_coords,
                &amounts,
                &flags,
                &dims,
                &expiries,
            ],
        )
        .await?)
}

/// An event of the batch with the relays of all its copies in the batch.
struct Merged<'a> {
    new: &'a NewEvent,
    relays: Vec<i16>,
}

impl std::ops::Deref for Merged<'_> {
    type Target = NewEvent;
    fn deref(&self) -> &NewEvent {
        self.new
    }
}

/// One entry per event id (ON CONFLICT cannot touch a row twice in one statement).
fn merge_duplicates(events: &[NewEvent]) -> Vec<Merged<'_>> {
    let mut index: HashMap<EventId, usize> = HashMap::with_capacity(events.len());
    let mut out: Vec<Merged<'_>> = Vec::with_capacity(events.len());
    for e in events {
        match index.get(&e.event.id) {
            Some(&i) => out[i].relays.extend_from_slice(&e.relays),
            None => {
                index.insert(e.event.id, out.len());
                out.push(Merged {
                    new: e,
                    relays: e.relays.clone(),
                });
            }
        }
    }
    out
}

fn pg_array(relays: &[i16]) -> String {
    let mut sorted = relays.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let items: Vec<String> = sorted.iter().map(i16::to_string).collect();
    format!("{{{}}}", items.join(","))
}
