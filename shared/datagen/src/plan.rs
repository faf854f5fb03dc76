//! Planning a dataset (sequential, seeded) and signing it (parallel, seeded per event).

use std::collections::{BTreeSet, HashMap};

use nostr_sdk::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use secp256k1::SECP256K1;

use crate::{Dataset, Error, Tier, invoice};

/// Hour-of-day weights (UTC): quiet nights, busy evenings. Makes hours bursty.
const HOUR_WEIGHTS: [u32; 24] = [
    3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 16, 12, 8, 5,
];

struct Planned {
    author: usize,
    unsigned: UnsignedEvent,
}

struct Planner {
    rng: ChaCha20Rng,
    keys: Vec<Keys>,
    plans: Vec<Planned>,
    start: u64,
    end: u64,
}

fn keys_from(rng: &mut ChaCha20Rng) -> Keys {
    loop {
        if let Ok(sk) = SecretKey::from_slice(&rng.r#gen::<[u8; 32]>()) {
            return Keys::new(sk);
        }
    }
}

fn tag(parts: &[&str]) -> Tag {
    Tag::parse(parts.iter().copied())
        .unwrap_or_else(|_| Tag::custom(TagKind::custom(parts[0]), parts[1..].iter().copied()))
}

impl Planner {
    fn time(&mut self) -> u64 {
        let days = (self.end - self.start) / 86_400;
        let day = self.rng.gen_range(0..days.max(1));
        let total: u32 = HOUR_WEIGHTS.iter().sum();
        let mut pick = self.rng.gen_range(0..total);
        let mut hour = 0;
        for (h, w) in HOUR_WEIGHTS.iter().enumerate() {
            if pick < *w {
                hour = h as u64;
                break;
            }
            pick -= w;
        }
        (self.start + day * 86_400 + hour * 3600 + self.rng.gen_range(0..3600)).min(self.end - 1)
    }

    /// Engagement follows a note: most of it within hours (exponential, mean 6 h).
    fn after(&mut self, t: u64) -> u64 {
        let u: f64 = self.rng.gen_range(1e-9..1.0);
        let delay = (-u.ln() * 6.0 * 3600.0) as u64;
        (t + 1 + delay).min(self.end - 1)
    }

    /// A skewed pick: a few users do most of the engaging.
    fn engager(&mut self, users: std::ops::Range<usize>) -> usize {
        let n = users.len() as f64;
        let u: f64 = self.rng.r#gen();
        users.start + ((n.powf(u) - 1.0) as usize).min(users.len() - 1)
    }

    fn push(
        &mut self,
        author: usize,
        kind: u16,
        content: &str,
        tags: Vec<Tag>,
        at: u64,
    ) -> EventId {
        let mut unsigned = EventBuilder::new(Kind::from(kind), content)
            .tags(tags)
            .custom_created_at(Timestamp::from(at))
            .build(self.keys[author].public_key());
        let id = unsigned.id();
        self.plans.push(Planned { author, unsigned });
        id
    }
}

/// Generates the dataset of `tier` from `seed`, with every event before `end` (unix seconds).
///
/// # Errors
/// [`Error::Signing`] if an event or invoice cannot be signed (not expected with valid keys).
pub fn generate(tier: Tier, seed: u64, end: u64) -> Result<Dataset, Error> {
    let spec = tier.spec();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Index 0: the target; 1..=users: everyone else; then the zap service.
    let mut keys: Vec<Keys> = (0..spec.users + 2).map(|_| keys_from(&mut rng)).collect();
    let zapper = keys.len() - 1;
    let node: secp256k1::SecretKey = **keys_from(&mut rng).secret_key();
    keys.shrink_to_fit();
    let users = 1..spec.users + 1;
    let start = end - spec.span_days * 86_400;
    let mut p = Planner {
        rng,
        keys,
        plans: Vec::with_capacity(spec.inbound * 11 / 10 + spec.unrelated),
        start,
        end,
    };
    let target = p.keys[0].public_key();
    let target_hex = target.to_hex();

    // The target's own notes and articles: what everyone engages with.
    let note_count = (spec.inbound / 25).max(20);
    let mut notes: Vec<(EventId, u64)> = (0..note_count)
        .map(|i| {
            let at = p.time();
            (
                p.push(0, 1, &format!("note {i} from the target"), vec![], at),
                at,
            )
        })
        .collect();
    notes.sort_by_key(|n| n.1);
    let mut articles = Vec::new();
    for i in 0..3 {
        let at = p.time();
        let d = format!("article-{i}");
        let id = p.push(
            0,
            30023,
            "long form",
            vec![tag(&["d", &d]), tag(&["title", &d])],
            at,
        );
        articles.push((id, format!("30023:{target_hex}:{d}"), at));
    }
    // An edit of the first article: same coordinate, later version.
    let (edit_at, edit_d) = (articles[0].2 + 3600, "article-0");
    p.push(
        0,
        30023,
        "long form, edited",
        vec![tag(&["d", edit_d]), tag(&["title", edit_d])],
        edit_at.min(end - 1),
    );

    let mut follows: HashMap<usize, (BTreeSet<usize>, u64)> = HashMap::new();
    let mut last_reaction: HashMap<usize, EventId> = HashMap::new();
    for i in 0..spec.inbound {
        let actor = p.engager(users.clone());
        let (note, note_at) = notes[p.rng.gen_range(0..notes.len())];
        let note_hex = note.to_hex();
        let at = p.after(note_at);
        let roll: f64 = p.rng.r#gen();
        if roll < 0.60 {
            let contents = [
                "+",
                "+",
                "+",
                "+",
                "+",
                "+",
                "+",
                "🤙",
                "❤️",
                "-",
                "",
                ":soapbox:",
            ];
            let content = contents[p.rng.gen_range(0..contents.len())];
            let mut tags = vec![tag(&["e", &note_hex]), tag(&["p", &target_hex])];
            if content == ":soapbox:" {
                tags.push(tag(&[
                    "emoji",
                    "soapbox",
                    "https://example.com/soapbox.png",
                ]));
            }
            let id = p.push(actor, 7, content, tags, at);
            last_reaction.insert(actor, id);
        } else if roll < 0.80 {
            let tags = if p.rng.gen_bool(0.8) {
                vec![
                    tag(&["e", &note_hex, "", "root", &target_hex]),
                    tag(&["p", &target_hex]),
                ]
            } else {
                vec![tag(&["e", &note_hex]), tag(&["p", &target_hex])]
            };
            p.push(actor, 1, &format!("reply {i}"), tags, at);
        } else if roll < 0.90 {
            plan_zap(&mut p, actor, zapper, &node, &note_hex, &target_hex, at)?;
        } else if roll < 0.95 {
            p.push(
                actor,
                6,
                "",
                vec![tag(&["e", &note_hex, ""]), tag(&["p", &target_hex])],
                at,
            );
        } else if roll < 0.97 {
            let tags = vec![
                tag(&["q", &note_hex, "", &target_hex]),
                tag(&["p", &target_hex]),
            ];
            p.push(actor, 1, &format!("quoting nostr:{note_hex}"), tags, at);
        } else if roll < 0.98 {
            let (article, coord, article_at) = articles[p.rng.gen_range(0..articles.len())].clone();
            let tags = vec![
                tag(&["A", &coord, ""]),
                tag(&["K", "30023"]),
                tag(&["P", &target_hex]),
                tag(&["a", &coord, ""]),
                tag(&["e", &article.to_hex(), ""]),
                tag(&["k", "30023"]),
                tag(&["p", &target_hex]),
            ];
            let at = p.after(article_at);
            p.push(actor, 1111, "a comment", tags, at);
        } else if roll < 0.995 {
            let others = spec.users;
            let (set, last) = follows.entry(actor).or_insert_with(|| (BTreeSet::new(), 0));
            // Follow the target, or (sometimes) unfollow it; plus a few others.
            if set.contains(&0) && p.rng.gen_bool(0.3) {
                set.remove(&0);
            } else {
                set.insert(0);
            }
            set.insert(1 + p.rng.gen_range(0..others));
            let at = at.max(*last + 1).min(end - 1);
            *last = at;
            let list: Vec<Tag> = set
                .iter()
                .map(|u| tag(&["p", &p.keys[*u].public_key().to_hex()]))
                .collect();
            p.push(actor, 3, "", list, at);
        } else if let Some(reaction) = last_reaction.remove(&actor) {
            p.push(
                actor,
                5,
                "",
                vec![tag(&["e", &reaction.to_hex()]), tag(&["k", "7"])],
                at,
            );
        } else {
            p.push(
                actor,
                7,
                "+",
                vec![tag(&["e", &note_hex]), tag(&["p", &target_hex])],
                at,
            );
        }
    }

    // Unrelated traffic between the other users.
    let mut their_notes: Vec<(EventId, usize, u64)> = Vec::new();
    for i in 0..spec.unrelated {
        let author = p.rng.gen_range(users.clone());
        let at = p.time();
        if their_notes.is_empty() || p.rng.gen_bool(0.4) {
            let id = p.push(author, 1, &format!("chatter {i}"), vec![], at);
            their_notes.push((id, author, at));
        } else {
            let (note, note_author, note_at) = their_notes[p.rng.gen_range(0..their_notes.len())];
            let at = p.after(note_at);
            let tags = vec![
                tag(&["e", &note.to_hex()]),
                tag(&["p", &p.keys[note_author].public_key().to_hex()]),
            ];
            p.push(author, 7, "+", tags, at);
        }
    }

    let Planner {
        mut rng,
        keys,
        plans,
        ..
    } = p;
    let mut events: Vec<Event> = plans
        .into_par_iter()
        .enumerate()
        .map(|(i, plan)| {
            let mut aux =
                ChaCha20Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            plan.unsigned
                .sign_with_ctx(SECP256K1, &mut aux, &keys[plan.author])
                .map_err(|e| Error::Signing(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    deliver(&mut events, &mut rng);
    Ok(Dataset {
        tier,
        seed,
        end,
        target,
        events,
    })
}

#[allow(
    clippy::too_many_arguments,
    reason = "a zap takes all of these; a struct would only rename them"
)]
fn plan_zap(
    p: &mut Planner,
    actor: usize,
    zapper: usize,
    node: &secp256k1::SecretKey,
    note_hex: &str,
    target_hex: &str,
    at: u64,
) -> Result<(), Error> {
    // Log-uniform from 1 sat to 2M sats: big zaps exist and must not be dropped.
    let sats = 10f64.powf(p.rng.gen_range(0.0..6.3)) as u64;
    let msats = sats.max(1) * 1000;
    let request = EventBuilder::new(Kind::ZapRequest, "")
        .tags([
            tag(&["relays", "wss://relay.example.com"]),
            tag(&["amount", &msats.to_string()]),
            tag(&["p", target_hex]),
            tag(&["e", note_hex]),
        ])
        .custom_created_at(Timestamp::from(at.saturating_sub(1)))
        .build(p.keys[actor].public_key())
        .sign_with_ctx(SECP256K1, &mut p.rng, &p.keys[actor])
        .map_err(|e| Error::Signing(e.to_string()))?;
    let description = request.as_json();
    let bolt11 =
        invoice::bolt11(node, msats, &description, at, p.rng.r#gen()).map_err(Error::Signing)?;
    let tags = vec![
        tag(&["p", target_hex]),
        tag(&["e", note_hex]),
        tag(&["P", &p.keys[actor].public_key().to_hex()]),
        tag(&["bolt11", &bolt11]),
        tag(&["description", &description]),
    ];
    // Some services publish a receipt twice (retries, several relays): same payment.
    if p.rng.gen_bool(0.03) {
        p.push(zapper, 9735, "", tags.clone(), (at + 5).min(p.end - 1));
    }
    p.push(zapper, 9735, "", tags, at);
    Ok(())
}

/// Mostly by time, with 5% of events moved later by up to 50 places and 1% delivered twice.
fn deliver(events: &mut Vec<Event>, rng: &mut ChaCha20Rng) {
    events.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let n = events.len();
    for i in 0..n {
        if rng.gen_bool(0.05) {
            let j = (i + rng.gen_range(1..50)).min(n - 1);
            events.swap(i, j);
        }
    }
    let repeats: Vec<(usize, Event)> = (0..n / 100)
        .map(|_| {
            let i = rng.gen_range(0..n);
            (rng.gen_range(i..n) + 1, events[i].clone())
        })
        .collect();
    let mut repeats = repeats;
    repeats.sort_by_key(|r| std::cmp::Reverse(r.0));
    for (at, ev) in repeats {
        events.insert(at.min(events.len()), ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tier_is_deterministic_signed_and_mixed() {
        let end = 1_760_000_000;
        let a = generate(Tier::Small, 7, end).unwrap();
        let b = generate(Tier::Small, 7, end).unwrap();
        assert_eq!(a.events.len(), b.events.len());
        assert!(
            a.events
                .iter()
                .zip(&b.events)
                .all(|(x, y)| x.as_json() == y.as_json())
        );
        assert_ne!(
            generate(Tier::Small, 8, end).unwrap().events[0].id,
            a.events[0].id
        );

        let distinct = a.distinct();
        assert!(
            distinct.len() < a.events.len(),
            "some events are delivered twice"
        );
        for ev in &distinct {
            let raw = na_domain::RawEvent::from_json(&ev.as_json()).unwrap();
            assert!(
                na_domain::verify(raw, end as i64).is_ok(),
                "event {} verifies",
                ev.id
            );
            assert!(ev.created_at.as_secs() < end);
        }
        let tags_target = |e: &Event| e.tags.public_keys().any(|p| *p == a.target);
        let count = |k: u16| {
            distinct
                .iter()
                .filter(|e| e.kind == Kind::from(k) && tags_target(e))
                .count() as f64
        };
        let inbound = Tier::Small.spec().inbound as f64;
        assert!(
            (count(7) / inbound - 0.6).abs() < 0.1,
            "reactions {}",
            count(7)
        );
        assert!(
            (count(9735) / inbound - 0.1).abs() < 0.04,
            "zaps {}",
            count(9735)
        );
        for k in [1, 3, 5, 6, 1111, 30023] {
            assert!(
                distinct.iter().any(|e| e.kind == Kind::from(k)),
                "kind {k} present"
            );
        }
        let out_of_order = a
            .events
            .windows(2)
            .filter(|w| w[0].created_at > w[1].created_at)
            .count();
        assert!(out_of_order > 0);
    }
}
