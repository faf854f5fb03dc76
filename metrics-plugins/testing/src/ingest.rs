//! Signed events to the facts a plugin is handed, offline: the product's rules without
//! PostgreSQL. Verification, normalization and follow lists are ingest's own code
//! (`na-domain`); what storage's statements decide (`na_storage::fact_changes`) is applied
//! here over the whole file, in arrival (file) order where the product's rule depends on it.
//! `tests/same_as_storage.rs` holds the two to the same facts on adversarial data.

use std::collections::{HashMap, HashSet};

use na_domain::follows::{self, FollowState};
use na_domain::{EventId, FactClass, FactFlags, Pubkey, RawEvent, VerifiedEvent, kinds};
use na_metrics_abi::Fact;
use rayon::prelude::*;

/// What [`ingest`] made of a file of events.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    /// The facts, ordered as storage keys them: `(created_at, event_id, seq)`.
    pub facts: Vec<Fact>,
    /// Distinct events accepted.
    pub events: usize,
    /// Events refused, and why (ingest refuses the same ones).
    pub refused: Vec<Refused>,
    /// Copies of an event already read (relays deliver the same event many times).
    pub duplicates: usize,
}

/// An event ingest refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based line (or item) number.
    pub line: usize,
    pub reason: String,
}

struct Row {
    created_at: i64,
    event_id: EventId,
    fact: na_domain::Fact,
}

/// Verifies and normalizes `events` (NIP-01 JSON, one per item, in arrival order; blank
/// items are skipped) at `now`
/// (Unix seconds: the clock for "too far in the future" and NIP-40 expiry), then applies
/// storage's rules: subjects from the target's author (`SELF` when it is the actor),
/// deletions, duplicate payments, article edits, mentions of a replied-to author, expiry.
///
/// Not applied: the LNURL check of zaps, which needs the network (zap facts carry no
/// `lnurl` dimension, read as `unverified`).
pub fn ingest<S: AsRef<str> + Sync>(events: &[S], now: i64) -> Ingested {
    let mut out = Ingested::default();
    // The signature checks are nearly all of the cost: on every core, as ingest does them.
    let checked: Vec<Option<Result<VerifiedEvent, String>>> = events
        .par_iter()
        .map(|json| {
            let json = json.as_ref().trim();
            (!json.is_empty()).then(|| {
                RawEvent::from_json(json)
                    .map_err(|e| e.to_string())
                    .and_then(|raw| na_domain::verify(raw, now).map_err(|r| r.to_string()))
            })
        })
        .collect();
    let mut seen: HashSet<EventId> = HashSet::new();
    let mut accepted: Vec<VerifiedEvent> = Vec::new();
    for (i, verified) in checked.into_iter().enumerate() {
        match verified {
            None => {}
            Some(Err(reason)) => out.refused.push(Refused {
                line: i + 1,
                reason,
            }),
            Some(Ok(ev)) if !seen.insert(ev.id) => out.duplicates += 1,
            Some(Ok(ev)) => accepted.push(ev),
        }
    }
    out.events = accepted.len();
    let mut rows = normalized(&accepted);
    let authors: HashMap<EventId, (Pubkey, u16)> = accepted
        .iter()
        .map(|e| (e.id, (e.pubkey, e.kind)))
        .collect();
    resolve(&mut rows, &authors);
    mark_edits(&mut rows);
    mark_mentions(&mut rows);
    apply_deletions(&mut rows, &authors);
    mark_duplicate_payments(&mut rows);
    for r in &mut rows {
        if r.fact.expires_at.is_some_and(|at| at <= now) {
            r.fact.flags.0 |= FactFlags::EXPIRED;
        }
    }
    rows.sort_by_key(|r| (r.created_at, r.event_id, r.fact.seq));
    out.facts = rows
        .iter()
        .map(|r| r.fact.to_contract(r.created_at, r.event_id))
        .collect();
    out
}

/// Each event's facts in arrival order, follow lists taken as storage takes them: a list's
/// own fact annotated by its verdict, then the flows it produced.
fn normalized(events: &[VerifiedEvent]) -> Vec<Row> {
    let mut lists: HashMap<Pubkey, FollowState> = HashMap::new();
    let mut rows = Vec::new();
    for e in events {
        let mut facts = na_domain::normalize(e);
        if e.kind == kinds::FOLLOW_LIST {
            let update = follows::apply_list(lists.get(&e.pubkey), e);
            for f in facts
                .iter_mut()
                .filter(|f| f.class == FactClass::FollowList)
            {
                f.dims = Some(update.list_dims(e));
            }
            facts.extend(update.facts.iter().cloned());
            if let Some(next) = update.next {
                lists.insert(e.pubkey, next);
            }
        }
        rows.extend(facts.into_iter().map(|fact| Row {
            created_at: e.created_at,
            event_id: e.id,
            fact,
        }));
    }
    rows
}

/// `INSERT_FACTS` and `REATTRIBUTE`: an unresolved fact whose target event is known gets
/// its author as subject, whichever arrived first.
fn resolve(rows: &mut [Row], authors: &HashMap<EventId, (Pubkey, u16)>) {
    for r in rows.iter_mut() {
        let f = &mut r.fact;
        if !f.flags.has(FactFlags::UNRESOLVED) {
            continue;
        }
        if let Some((author, _)) = f.target_event().and_then(|t| authors.get(t)) {
            f.subject = Some(*author);
            f.flags.0 &= !(FactFlags::UNRESOLVED | FactFlags::SELF);
            if *author == f.actor {
                f.flags.0 |= FactFlags::SELF;
            }
        }
    }
}

/// An article version is an edit unless it is the first of its coordinate to arrive.
fn mark_edits(rows: &mut [Row]) {
    let mut published: HashSet<String> = HashSet::new();
    for r in rows
        .iter_mut()
        .filter(|r| r.fact.class == FactClass::Article)
    {
        let coord = r.fact.target_coordinate().unwrap_or_default().to_owned();
        if !published.insert(coord) {
            r.fact.flags.0 |= FactFlags::EDIT;
        }
    }
}

/// `MARK_MENTIONS`: a mention of the pubkey the same event replies to or quotes.
fn mark_mentions(rows: &mut [Row]) {
    let targeted: HashSet<(EventId, Pubkey)> = rows
        .iter()
        .filter(|r| matches!(r.fact.class, FactClass::Reply | FactClass::Quote))
        .filter_map(|r| Some((r.event_id, r.fact.subject?)))
        .collect();
    for r in rows
        .iter_mut()
        .filter(|r| r.fact.class == FactClass::Mention)
    {
        let hit = r
            .fact
            .subject
            .is_some_and(|s| targeted.contains(&(r.event_id, s)));
        if hit {
            r.fact.flags.0 |= FactFlags::MENTIONS_TARGET_AUTHOR;
        } else {
            r.fact.flags.0 &= !FactFlags::MENTIONS_TARGET_AUTHOR;
        }
    }
}

/// `APPLY_TOMBSTONES` (NIP-09): an `e` reference deletes every fact of an event its deleter
/// wrote (never a kind 5; follow flows stay); an `a` reference deletes the deleter's article
/// versions of that coordinate up to the deletion's time.
fn apply_deletions(rows: &mut [Row], authors: &HashMap<EventId, (Pubkey, u16)>) {
    let mut by_event: HashSet<EventId> = HashSet::new();
    let mut by_coord: Vec<(Pubkey, String, i64)> = Vec::new();
    for r in rows.iter().filter(|r| r.fact.class == FactClass::Deletion) {
        let deleter = r.fact.actor;
        if let Some(target) = r.fact.target_event()
            && authors
                .get(target)
                .is_some_and(|(author, kind)| *author == deleter && *kind != kinds::DELETION)
        {
            by_event.insert(*target);
        }
        if let Some(coord) = r.fact.target_coordinate() {
            by_coord.push((deleter, coord.to_owned(), r.created_at));
        }
    }
    let flows = [
        FactClass::FollowBaseline,
        FactClass::FollowGained,
        FactClass::FollowLost,
    ];
    for r in rows.iter_mut() {
        let f = &r.fact;
        let by_id = by_event.contains(&r.event_id) && !flows.contains(&f.class);
        let by_address = f.class == FactClass::Article
            && by_coord.iter().any(|(deleter, coord, at)| {
                *deleter == f.actor
                    && f.target_coordinate() == Some(coord.as_str())
                    && r.created_at <= *at
            });
        if by_id || by_address {
            r.fact.flags.0 |= FactFlags::DELETED;
        }
    }
}

/// `MARK_DUPLICATE_PAYMENTS` (NIP-57): of the valid receipts for one payment hash, only the
/// one with the smallest `(created_at, id)` counts.
fn mark_duplicate_payments(rows: &mut [Row]) {
    let hash = |r: &Row| -> Option<String> {
        if r.fact.class != FactClass::Zap || r.fact.flags.has(FactFlags::INVALID) {
            return None;
        }
        Some(
            r.fact
                .dims
                .as_ref()?
                .get("payment_hash")?
                .as_str()?
                .to_owned(),
        )
    };
    let mut first: HashMap<String, (i64, EventId)> = HashMap::new();
    for r in rows.iter() {
        if let Some(h) = hash(r) {
            let key = (r.created_at, r.event_id);
            first
                .entry(h)
                .and_modify(|k| *k = (*k).min(key))
                .or_insert(key);
        }
    }
    for r in rows.iter_mut() {
        if let Some(h) = hash(r) {
            if first.get(&h) == Some(&(r.created_at, r.event_id)) {
                r.fact.flags.0 &= !FactFlags::DUPLICATE_PAYMENT;
            } else {
                r.fact.flags.0 |= FactFlags::DUPLICATE_PAYMENT;
            }
        }
    }
}
