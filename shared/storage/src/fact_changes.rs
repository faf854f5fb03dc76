//! Every statement that changes `facts`, and the one way each change reaches `fact_log`:
//! +1 for a new fact; -1 of the old row and +1 of the new for a change. Compaction replays
//! the log in commit order, so a change the log does not see would be a count it misses.

use std::sync::LazyLock;

use na_domain::{FactClass, FactFlags};

// The numbers the statements test and set, from their one definition.
const UNRESOLVED: i32 = FactFlags::UNRESOLVED;
const SELF: i32 = FactFlags::SELF;
/// What re-attribution recomputes: resolved now, and whether the actor is the subject.
const RESOLUTION: i32 = FactFlags::UNRESOLVED | FactFlags::SELF;
const INVALID: i32 = FactFlags::INVALID;
const DELETED: i32 = FactFlags::DELETED;
const DUPLICATE_PAYMENT: i32 = FactFlags::DUPLICATE_PAYMENT;
const EDIT: i32 = FactFlags::EDIT;
const EXPIRED: i32 = FactFlags::EXPIRED;
const MENTIONS_TARGET_AUTHOR: i32 = FactFlags::MENTIONS_TARGET_AUTHOR;
const REPLY: i16 = FactClass::Reply as i16;
const QUOTE: i16 = FactClass::Quote as i16;
const MENTION: i16 = FactClass::Mention as i16;
const ZAP: i16 = FactClass::Zap as i16;
const ARTICLE: i16 = FactClass::Article as i16;
const FOLLOW_FLOWS: [i16; 3] = [
    FactClass::FollowBaseline as i16,
    FactClass::FollowGained as i16,
    FactClass::FollowLost as i16,
];

/// The columns a fact has, in `facts` and in `fact_log` alike.
const COLUMNS: &str = "created_at, event_id, seq, class, actor, subject, target_event, \
                       target_coord, amount_msats, flags, dims, expires_at";

/// An UPDATE of the facts `candidates` selects (their key, plus whatever `set` reads as
/// `c.<column>`), logged -1 old, +1 new.
fn logged_update(candidates: &str, set: &str) -> String {
    format!(
        "WITH cand AS ({candidates}),
         old AS (SELECT f.* FROM facts f JOIN cand c USING (created_at, event_id, seq)),
         upd AS (
             UPDATE facts f SET {set}
             FROM cand c
             WHERE f.created_at = c.created_at AND f.event_id = c.event_id AND f.seq = c.seq
             RETURNING f.*
         )
         INSERT INTO fact_log (sign, {COLUMNS})
         SELECT -1, {COLUMNS} FROM old
         UNION ALL
         SELECT 1, {COLUMNS} FROM upd"
    )
}

/// New facts, with the subject taken from the target's author when it is known, logged +1.
/// An article version is an edit unless it is the first of its coordinate to
/// arrive: earlier in the batch (`ord`) or already stored. A fact whose NIP-40 expiration
/// has passed arrives expired.
pub(crate) static INSERT_FACTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ins AS (
             INSERT INTO facts ({COLUMNS})
             SELECT u.created_at, u.event_id, u.seq, u.class, u.actor,
                    CASE WHEN u.flags & {UNRESOLVED} = {UNRESOLVED} AND a.pubkey IS NOT NULL THEN a.pubkey ELSE u.subject END,
                    u.target_event, u.target_coord, u.amount_msats,
                    CASE WHEN u.flags & {UNRESOLVED} = {UNRESOLVED} AND a.pubkey IS NOT NULL
                         THEN (u.flags & ~{RESOLUTION}) | (CASE WHEN a.pubkey = u.actor THEN {SELF} ELSE 0 END)
                         ELSE u.flags END
                    | CASE WHEN u.class = {ARTICLE} AND (
                               row_number() OVER (PARTITION BY u.class, u.target_coord ORDER BY u.ord) > 1
                               OR EXISTS (SELECT 1 FROM facts x
                                          WHERE x.class = {ARTICLE} AND x.target_coord = u.target_coord))
                           THEN {EDIT} ELSE 0 END
                    | CASE WHEN u.expires_at <= now() THEN {EXPIRED} ELSE 0 END,
                    u.dims, u.expires_at
             FROM unnest($1::timestamptz[], $2::bytea[], $3::smallint[], $4::smallint[],
                         $5::bytea[], $6::bytea[], $7::bytea[], $8::text[], $9::bigint[],
                         $10::int[], $11::jsonb[], $12::timestamptz[])
                  WITH ORDINALITY AS u({COLUMNS}, ord)
             LEFT JOIN event_authors a ON a.id = u.target_event
             ON CONFLICT DO NOTHING
             RETURNING *
         )
         INSERT INTO fact_log (sign, {COLUMNS}) SELECT 1, {COLUMNS} FROM ins"
    )
});

/// Facts waiting for one of these events ($1) as their target get its author as subject.
pub(crate) static REATTRIBUTE: LazyLock<String> = LazyLock::new(|| {
    logged_update(
        &format!(
            "SELECT f.created_at, f.event_id, f.seq, a.pubkey AS author
             FROM facts f JOIN event_authors a ON a.id = f.target_event
             WHERE f.target_event = ANY($1) AND f.flags & {UNRESOLVED} = {UNRESOLVED}"
        ),
        &format!(
            "subject = c.author,
             flags = (f.flags & ~{RESOLUTION}) | (CASE WHEN c.author = f.actor THEN {SELF} ELSE 0 END)"
        ),
    )
});

/// NIP-09: marks deleted the facts of events a tombstone names, where the deleter wrote
/// them (`e`: any time, never a kind 5; `a`: article versions up to the deletion's time).
/// Candidates come from the tombstones of new deletions ($1) and from the new events ($2),
/// so it does not matter which of a deletion and its target arrives first. Follow flows
/// (classes 12-14) stay: they are a follower's history, and dropping one would leave the
/// follows after it unbalanced.
pub(crate) static APPLY_TOMBSTONES: LazyLock<String> = LazyLock::new(|| {
    let [baseline, gained, lost] = FOLLOW_FLOWS;
    logged_update(
        &format!(
            "SELECT f.created_at, f.event_id, f.seq
         FROM tombstones t
         JOIN event_authors a ON a.id = t.target_event AND a.pubkey = t.deleter AND a.kind <> 5
         JOIN facts f ON f.created_at = a.created_at AND f.event_id = a.id
         WHERE (t.deletion_id = ANY($1) OR t.target_event = ANY($2)) AND f.flags & {DELETED} = 0
           AND f.class NOT IN ({baseline}, {gained}, {lost})
         UNION
         SELECT f.created_at, f.event_id, f.seq
         FROM tombstones t
         JOIN facts f ON f.class = {ARTICLE} AND f.target_coord = t.target_coord
                     AND f.actor = t.deleter AND f.created_at <= t.created_at
         WHERE t.target_coord IS NOT NULL
           AND (t.deletion_id = ANY($1) OR f.event_id = ANY($2)) AND f.flags & {DELETED} = 0"
        ),
        &format!("flags = f.flags | {DELETED}"),
    )
});

/// NIP-57: of the valid receipts for one payment hash ($1), only the one with the smallest
/// (created_at, id) counts; the others are flagged. Recomputed for every hash a batch
/// touches, so arrival order does not matter.
pub(crate) static MARK_DUPLICATE_PAYMENTS: LazyLock<String> = LazyLock::new(|| {
    logged_update(
        &format!(
            "SELECT created_at, event_id, seq, new_flags FROM (
             SELECT f.created_at, f.event_id, f.seq, f.flags,
                    CASE WHEN row_number() OVER (PARTITION BY f.dims->>'payment_hash'
                                                 ORDER BY f.created_at, f.event_id) = 1
                         THEN f.flags & ~{DUPLICATE_PAYMENT} ELSE f.flags | {DUPLICATE_PAYMENT} END AS new_flags
             FROM facts f
             WHERE f.class = {ZAP} AND f.flags & {INVALID} = 0 AND f.dims->>'payment_hash' = ANY($1)
         ) zaps
         WHERE flags <> new_flags"
        ),
        "flags = c.new_flags",
    )
});

/// NIP-40: facts whose expiration is at or before $1 are flagged expired, so that
/// compaction retracts what it already counted.
pub(crate) static EXPIRE_DUE: LazyLock<String> = LazyLock::new(|| {
    logged_update(
        &format!(
            "SELECT created_at, event_id, seq FROM facts
             WHERE expires_at <= $1 AND flags & {EXPIRED} = 0"
        ),
        &format!("flags = f.flags | {EXPIRED}"),
    )
});

/// `mentions_received` excludes a mention of the pubkey the same event replies to or quotes
/// (NOSTR-SEMANTICS.md): such a mention is flagged `MENTIONS_TARGET_AUTHOR`. Recomputed for the mentions of the
/// new events ($1) and of the events whose replies or quotes point at them (their subject
/// may just have been re-attributed), so it follows re-attribution in either order.
pub(crate) static MARK_MENTIONS: LazyLock<String> = LazyLock::new(|| {
    logged_update(
        &format!(
            "SELECT created_at, event_id, seq, new_flags FROM (
             SELECT m.created_at, m.event_id, m.seq, m.flags,
                    CASE WHEN EXISTS (
                             SELECT 1 FROM facts r
                             WHERE r.created_at = m.created_at AND r.event_id = m.event_id
                               AND r.class IN ({REPLY}, {QUOTE}) AND r.subject = m.subject)
                         THEN m.flags | {MENTIONS_TARGET_AUTHOR} ELSE m.flags & ~{MENTIONS_TARGET_AUTHOR} END AS new_flags
             FROM facts m
             WHERE m.class = {MENTION} AND (
                 m.event_id = ANY($1)
                 OR (m.created_at, m.event_id) IN (
                     SELECT t.created_at, t.event_id FROM facts t
                     WHERE t.target_event = ANY($1) AND t.class IN ({REPLY}, {QUOTE})))
         ) mentions
         WHERE flags <> new_flags"
        ),
        "flags = c.new_flags",
    )
});
