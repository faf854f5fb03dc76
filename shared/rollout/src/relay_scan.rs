//! What a client computes by scanning relays itself, as clients did before v2: one REQ per
//! kind with `authors` or `#p`, `limit` events a page, paged back by `until`, events
//! counted as they come (deduplicated by id, signatures checked, nothing else). Set next to
//! the canonical answer ([`compare`]), each difference comes with the reasons the scan can
//! see: pages it stopped at, relays that did not answer, the pubkey's own events, deleted
//! events, zap receipts that do not verify, and `#p` tags that are not replies to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use na_api_types::AnalyticsV1;
use na_domain::event::RawEvent;
use nostr_sdk::prelude::{
    Client, Event, EventId, Filter, JsonUtil, Kind, PublicKey, RelayUrl, Timestamp,
};
use serde::Serialize;

/// How the scan asks.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub pubkey: PublicKey,
    /// `[since, until)`, Unix seconds.
    pub since: i64,
    pub until: i64,
    pub relays: Vec<String>,
    /// Events asked for per REQ (clients ask 500).
    pub page_limit: usize,
    /// Pages per filter and relay before the scan gives up (a client's patience).
    pub max_pages: usize,
    /// Longest wait for one page.
    pub timeout: Duration,
}

/// One relay's part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayOutcome {
    pub url: String,
    /// Why it gave nothing: it could not be reached, or a REQ failed.
    pub error: Option<String>,
}

/// One filter on one relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FilterOutcome {
    pub filter: &'static str,
    pub relay: String,
    pub pages: usize,
    pub events: usize,
    /// The last page was full when the scan stopped: more remained.
    pub capped: bool,
}

/// What the scan found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    /// The legacy fields as the scan counts them (`followers_gained`/`_lost`: none, relays
    /// keep only each follower's latest list).
    pub fields: AnalyticsV1,
    /// Per field, what the scan counted that the canonical rules do not, or missed.
    pub reasons: BTreeMap<String, Vec<String>>,
    pub relays: Vec<RelayOutcome>,
    pub filters: Vec<FilterOutcome>,
}

/// One field of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: String,
    pub relay_scan: Option<i64>,
    pub v2: Option<i64>,
    /// relay scan − v2.
    pub difference: Option<i64>,
    pub why: Vec<String>,
}

/// The fields a scan counts, each from the filter named the same.
const FIELDS: [&str; 7] = [
    "notes",
    "replies",
    "reactions",
    "reposts",
    "zaps",
    "zap_sats",
    "followers",
];

/// Scans the relays as a client would.
///
/// # Errors
/// A relay URL that is not one.
pub async fn scan(req: &ScanRequest) -> Result<Scan, String> {
    let client = Client::default();
    let mut relays = Vec::new();
    let mut reachable = Vec::new();
    for url in &req.relays {
        let parsed = RelayUrl::parse(url).map_err(|e| format!("relay {url:?}: {e}"))?;
        client
            .add_relay(parsed.clone())
            .await
            .map_err(|e| format!("relay {url:?}: {e}"))?;
        let error = client
            .try_connect_relay(parsed.clone(), req.timeout)
            .await
            .err()
            .map(|e| e.to_string());
        if error.is_none() {
            reachable.push((relays.len(), parsed));
        }
        relays.push(RelayOutcome {
            url: url.clone(),
            error,
        });
    }
    let p = req.pubkey;
    let window = |f: Filter| {
        f.since(Timestamp::from_secs(req.since.max(0) as u64))
            .until(Timestamp::from_secs((req.until - 1).max(0) as u64))
    };
    let filters: [(&'static str, Filter); 6] = [
        (
            "notes",
            window(Filter::new().kind(Kind::TextNote).author(p)),
        ),
        (
            "replies",
            window(Filter::new().kind(Kind::TextNote).pubkey(p)),
        ),
        (
            "reactions",
            window(Filter::new().kind(Kind::Reaction).pubkey(p)),
        ),
        (
            "reposts",
            window(
                Filter::new()
                    .kinds([Kind::Repost, Kind::GenericRepost])
                    .pubkey(p),
            ),
        ),
        (
            "zaps",
            window(Filter::new().kind(Kind::ZapReceipt).pubkey(p)),
        ),
        (
            "followers",
            Filter::new()
                .kind(Kind::ContactList)
                .pubkey(p)
                .until(Timestamp::from_secs((req.until - 1).max(0) as u64)),
        ),
    ];
    let mut found: HashMap<&'static str, BTreeMap<EventId, Event>> = HashMap::new();
    let mut outcomes = Vec::new();
    for (name, filter) in filters {
        for (index, relay) in &reachable {
            let (events, (mut outcome, error)) = pages(&client, relay, name, &filter, req).await;
            outcome.relay.clone_from(&relays[*index].url);
            if let Some(error) = error {
                relays[*index].error.get_or_insert(error);
            }
            outcomes.push(outcome);
            found
                .entry(name)
                .or_default()
                .extend(events.into_iter().map(|e| (e.id, e)));
        }
    }
    let reachable: Vec<RelayUrl> = reachable.into_iter().map(|(_, url)| url).collect();
    let deleted = deleted(&client, &reachable, &found, req.timeout).await;
    client.disconnect().await;
    Ok(count(req, &found, &deleted, relays, outcomes))
}

/// One filter on one relay, paged back by `until` until a page comes back short, nothing
/// new arrives, or `max_pages` were read.
async fn pages(
    client: &Client,
    relay: &RelayUrl,
    name: &'static str,
    filter: &Filter,
    req: &ScanRequest,
) -> (Vec<Event>, (FilterOutcome, Option<String>)) {
    let mut events: BTreeMap<EventId, Event> = BTreeMap::new();
    let mut until = filter.until;
    let mut outcome = FilterOutcome {
        filter: name,
        relay: relay.to_string(),
        pages: 0,
        events: 0,
        capped: false,
    };
    let mut error = None;
    while outcome.pages < req.max_pages {
        let mut page_filter = filter.clone().limit(req.page_limit);
        if let Some(u) = until {
            page_filter = page_filter.until(u);
        }
        let page = match client
            .fetch_events_from([relay.clone()], page_filter, req.timeout)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        outcome.pages += 1;
        let full = page.len() >= req.page_limit;
        let oldest = page.iter().map(|e| e.created_at).min();
        let before = events.len();
        events.extend(page.into_iter().map(|e| (e.id, e)));
        let new = events.len() > before;
        if !full || !new {
            outcome.capped = false;
            break;
        }
        outcome.capped = true;
        until = oldest;
    }
    outcome.events = events.len();
    (events.into_values().collect(), (outcome, error))
}

/// The ids among `found` that a kind 5 by their own author deletes (NIP-09), as the scan's
/// relays hold them.
async fn deleted(
    client: &Client,
    relays: &[RelayUrl],
    found: &HashMap<&'static str, BTreeMap<EventId, Event>>,
    timeout: Duration,
) -> BTreeSet<EventId> {
    let authors: HashMap<EventId, PublicKey> = found
        .values()
        .flat_map(|m| m.values())
        .map(|e| (e.id, e.pubkey))
        .collect();
    let ids: Vec<EventId> = authors.keys().copied().collect();
    let mut out = BTreeSet::new();
    if relays.is_empty() {
        return out;
    }
    for chunk in ids.chunks(250) {
        let filter = Filter::new()
            .kind(Kind::EventDeletion)
            .events(chunk.to_vec());
        let Ok(deletions) = client
            .fetch_events_from(relays.to_vec(), filter, timeout)
            .await
        else {
            continue;
        };
        for d in deletions.iter() {
            for id in d.tags.event_ids() {
                if authors.get(id) == Some(&d.pubkey) {
                    out.insert(*id);
                }
            }
        }
    }
    out
}

/// Whether a kind 1 says it replies to something: any `e` tag, as clients read it.
fn has_e(e: &Event) -> bool {
    e.tags.event_ids().next().is_some()
}

/// The sats a client reads off a receipt: its invoice's amount, whether or not it verifies.
fn receipt_msats(e: &Event) -> Option<u64> {
    let bolt11 = e
        .tags
        .iter()
        .map(|t| t.as_slice())
        .find(|t| t.first().is_some_and(|name| name == "bolt11"))
        .and_then(|t| t.get(1))?;
    na_domain::zap::invoice_amount(&bolt11.trim().to_lowercase()).ok()
}

/// A receipt as the canonical rules read it (NIP-57): why it does not count, or the zap.
fn zap_check(e: &Event) -> Result<na_domain::zap::ValidZap, String> {
    let raw = RawEvent::from_json(&e.as_json()).map_err(|e| e.to_string())?;
    na_domain::zap::validate(&raw).map_err(|f| f.to_string())
}

fn count(
    req: &ScanRequest,
    found: &HashMap<&'static str, BTreeMap<EventId, Event>>,
    deleted: &BTreeSet<EventId>,
    relays: Vec<RelayOutcome>,
    filters: Vec<FilterOutcome>,
) -> Scan {
    let p = req.pubkey;
    let events = |name: &str| found.get(name).into_iter().flat_map(|m| m.values());
    let mut reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut why = |field: &str, n: usize, text: &str| {
        if n > 0 {
            reasons
                .entry(field.to_owned())
                .or_default()
                .push(format!("{n} {text}"));
        }
    };
    let in_window = |e: &&Event| {
        let t = e.created_at.as_secs() as i64;
        (req.since..req.until).contains(&t)
    };
    let notes: Vec<&Event> = events("notes")
        .filter(in_window)
        .filter(|e| !has_e(e))
        .collect();
    let replies: Vec<&Event> = events("replies")
        .filter(in_window)
        .filter(|e| e.pubkey != p && has_e(e))
        .collect();
    let reactions: Vec<&Event> = events("reactions").filter(in_window).collect();
    let reposts: Vec<&Event> = events("reposts").filter(in_window).collect();
    let zaps: Vec<&Event> = events("zaps").filter(in_window).collect();
    let deleted_of = |list: &[&Event]| list.iter().filter(|e| deleted.contains(&e.id)).count();
    let own = |list: &[&Event]| list.iter().filter(|e| e.pubkey == p).count();
    why("notes", deleted_of(&notes), "deleted notes counted");
    why("replies", deleted_of(&replies), "deleted replies counted");
    why(
        "replies",
        replies.len(),
        "kind 1 events tagging the pubkey with an e tag counted as replies: the scan cannot tell a reply to its event from a mention in a thread without fetching each parent",
    );
    for (field, list) in [("reactions", &reactions), ("reposts", &reposts)] {
        why(field, deleted_of(list), "deleted events counted");
        why(field, own(list), "of the pubkey's own events counted");
    }
    let checked: Vec<_> = zaps.iter().map(|e| zap_check(e)).collect();
    let failures = checked.iter().filter(|c| c.is_err()).count();
    let valid: Vec<_> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
    let own_zaps = valid.iter().filter(|z| z.sender == p.to_bytes()).count();
    let mut payments = BTreeMap::new();
    for z in &valid {
        *payments.entry(z.payment_hash).or_insert(0usize) += 1;
    }
    let repeats: usize = payments.values().map(|n| n - 1).sum();
    for field in ["zaps", "zap_sats"] {
        why(
            field,
            failures,
            "receipts counted that do not verify (NIP-57)",
        );
        why(
            field,
            own_zaps,
            "self-zaps counted (the pubkey zapping itself: sent, not received)",
        );
        why(
            field,
            repeats,
            "duplicate receipts of one payment counted (one payment counts once)",
        );
    }
    why("zaps", deleted_of(&zaps), "deleted receipts counted");
    // Followers: each author's newest list before the window's end, as relays keep it.
    let mut newest: HashMap<PublicKey, &Event> = HashMap::new();
    for e in events("followers").filter(|e| e.pubkey != p) {
        let keep = newest
            .get(&e.pubkey)
            .is_none_or(|n| (e.created_at, e.id) > (n.created_at, n.id));
        if keep {
            newest.insert(e.pubkey, e);
        }
    }
    let followers = newest
        .values()
        .filter(|e| e.tags.public_keys().any(|k| *k == p))
        .count();
    for o in filters.iter().filter(|o| o.capped) {
        let text = format!(
            "pages of {} read from {} before the scan stopped with more left: it undercounts",
            req.page_limit, o.relay
        );
        why(o.filter, o.pages, &text);
        if o.filter == "zaps" {
            why("zap_sats", o.pages, &text);
        }
    }
    let missing: Vec<&str> = relays
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.url.as_str())
        .collect();
    if !missing.is_empty() {
        for field in FIELDS {
            reasons.entry(field.to_owned()).or_default().push(format!(
                "{} of {} relays did not answer ({}): their events are missing",
                missing.len(),
                relays.len(),
                missing.join(", ")
            ));
        }
    }
    let n = |list: &[&Event]| Some(list.len() as i64);
    let msats: u64 = zaps.iter().filter_map(|e| receipt_msats(e)).sum();
    Scan {
        fields: AnalyticsV1 {
            pubkey: p.to_hex(),
            days: (req.until - req.since + 86_399).div_euclid(86_400),
            since: req.since,
            until: req.until,
            notes: n(&notes),
            replies: n(&replies),
            reactions: n(&reactions),
            reposts: n(&reposts),
            zaps: n(&zaps),
            zap_sats: Some(i64::try_from(msats / 1000).unwrap_or(i64::MAX)),
            followers: Some(followers as i64),
            followers_gained: None,
            followers_lost: None,
        },
        reasons,
        relays,
        filters,
    }
}

/// Each field of `scan` next to the canonical answer `v2`, with the scan's reasons for a
/// field that differs (none for one that agrees).
pub fn compare(scan: &Scan, v2: &AnalyticsV1) -> Vec<Difference> {
    let pairs = [
        ("notes", scan.fields.notes, v2.notes),
        ("replies", scan.fields.replies, v2.replies),
        ("reactions", scan.fields.reactions, v2.reactions),
        ("reposts", scan.fields.reposts, v2.reposts),
        ("zaps", scan.fields.zaps, v2.zaps),
        ("zap_sats", scan.fields.zap_sats, v2.zap_sats),
        ("followers", scan.fields.followers, v2.followers),
        (
            "followers_gained",
            scan.fields.followers_gained,
            v2.followers_gained,
        ),
        (
            "followers_lost",
            scan.fields.followers_lost,
            v2.followers_lost,
        ),
    ];
    pairs
        .into_iter()
        .map(|(field, s, v)| {
            let difference = s.zip(v).map(|(s, v)| s - v);
            let why = match (s, difference) {
                (None, _) => vec![
                    "a relay scan cannot tell: relays keep only each follower's newest list"
                        .to_owned(),
                ],
                (_, Some(0)) => Vec::new(),
                _ => scan.reasons.get(field).cloned().unwrap_or_default(),
            };
            Difference {
                field: field.to_owned(),
                relay_scan: s,
                v2: v,
                difference,
                why,
            }
        })
        .collect()
}
