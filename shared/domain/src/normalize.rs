//! Event -> facts, following NOSTR-SEMANTICS.md. The subject of an inbound interaction is the
//! hint carried by the event; storage replaces it with the target's author when it knows it.

use std::collections::BTreeSet;

use crate::event::{Pubkey, RawEvent, Tag, parse_hex32};
use crate::facts::{Fact, FactClass, FactFlags, Target};
use crate::{kinds, zap};

/// The facts one verified event contributes, in a deterministic order.
pub fn normalize(ev: &RawEvent) -> Vec<Fact> {
    let mut out = Facts {
        actor: ev.pubkey,
        facts: Vec::new(),
    };
    match ev.kind {
        kinds::TEXT_NOTE => {
            match nip10_parent(&ev.tags) {
                Some((id, hint)) => out.push(FactClass::Reply, Some(Target::Event(id)), hint),
                None => out.push(FactClass::Note, None, None),
            }
            out.quotes(&ev.tags);
            out.mentions(&ev.tags);
        }
        kinds::COMMENT => {
            if let Some((target, hint)) = nip22_parent(&ev.tags) {
                out.push(FactClass::Comment, target, hint);
            }
            out.quotes(&ev.tags);
        }
        kinds::REACTION => {
            let target = last_tag(&ev.tags, "e")
                .and_then(|t| parse_hex32(&t[1]).map(|id| (Target::Event(id), t)))
                .or_else(|| last_tag(&ev.tags, "a").map(|t| (Target::Coordinate(t[1].clone()), t)));
            if let Some((target, _)) = target {
                let hint = last_tag(&ev.tags, "p").and_then(|t| parse_hex32(&t[1]));
                let class = reaction_class(ev);
                let dims = serde_json::json!({ "class": class, "content": ev.content });
                out.push_with(FactClass::Reaction, Some(target), hint, Some(dims));
            }
        }
        kinds::REPOST | kinds::GENERIC_REPOST => {
            let target = first_tag(&ev.tags, "e")
                .and_then(|t| parse_hex32(&t[1]))
                .map(Target::Event)
                .or_else(|| first_tag(&ev.tags, "a").map(|t| Target::Coordinate(t[1].clone())));
            if target.is_some() {
                let hint = first_tag(&ev.tags, "p").and_then(|t| parse_hex32(&t[1]));
                out.push(FactClass::Repost, target, hint);
            }
        }
        kinds::ZAP_RECEIPT => out.facts.push(zap_fact(ev)),
        kinds::ARTICLE => {
            let d = ev.tag_value("d").unwrap_or("");
            let coord = format!("{}:{}:{d}", ev.kind, hex::encode(ev.pubkey));
            out.push(FactClass::Article, Some(Target::Coordinate(coord)), None);
        }
        kinds::DELETION => {
            for t in ev.tags.iter().filter(|t| t.len() > 1) {
                let target = match t[0].as_str() {
                    "e" => parse_hex32(&t[1]).map(Target::Event),
                    "a" => Some(Target::Coordinate(t[1].clone())),
                    _ => None,
                };
                if target.is_some() {
                    out.push(FactClass::Deletion, target, None);
                }
            }
        }
        kinds::FOLLOW_LIST => out.push(FactClass::FollowList, None, None),
        _ => {}
    }
    let expires_at = expiration(ev);
    for fact in &mut out.facts {
        fact.expires_at = expires_at;
    }
    out.facts
}

/// NIP-40: the first `expiration` tag, when it is a unix time in whole seconds.
fn expiration(ev: &RawEvent) -> Option<i64> {
    ev.tag_value("expiration")?
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
}

struct Facts {
    actor: Pubkey,
    facts: Vec<Fact>,
}

impl Facts {
    fn fact(&self, class: FactClass, target: Option<Target>, subject: Option<Pubkey>) -> Fact {
        let mut flags = FactFlags::default();
        // The subject of these is the target's author: until storage knows that event, the
        // subject is only the hint the event carries (or none).
        let subject = match &target {
            Some(Target::Event(_)) if class.subject_is_target_author() => {
                flags.0 |= FactFlags::UNRESOLVED;
                subject
            }
            // A coordinate names its author: it outranks the hint.
            Some(Target::Coordinate(c)) if class.subject_is_target_author() => {
                coordinate_author(c).or(subject)
            }
            _ => subject,
        };
        if subject == Some(self.actor) {
            flags.0 |= FactFlags::SELF;
        }
        Fact {
            class,
            seq: i16::try_from(self.facts.len()).unwrap_or(i16::MAX),
            actor: self.actor,
            subject,
            target,
            amount_msats: None,
            flags,
            dims: None,
            expires_at: None,
        }
    }

    fn push(&mut self, class: FactClass, target: Option<Target>, subject: Option<Pubkey>) {
        self.push_with(class, target, subject, None);
    }

    fn push_with(
        &mut self,
        class: FactClass,
        target: Option<Target>,
        subject: Option<Pubkey>,
        dims: Option<serde_json::Value>,
    ) {
        let mut fact = self.fact(class, target, subject);
        fact.dims = dims;
        self.facts.push(fact);
    }

    fn quotes(&mut self, tags: &[Tag]) {
        for t in tags.iter().filter(|t| t[0] == "q" && t.len() > 1) {
            let target = parse_hex32(&t[1])
                .map(Target::Event)
                .unwrap_or_else(|| Target::Coordinate(t[1].clone()));
            let hint = t.get(3).and_then(|p| parse_hex32(p));
            self.push(FactClass::Quote, Some(target), hint);
        }
    }

    fn mentions(&mut self, tags: &[Tag]) {
        let distinct: BTreeSet<Pubkey> = tags
            .iter()
            .filter(|t| t[0] == "p" && t.len() > 1)
            .filter_map(|t| parse_hex32(&t[1]))
            .collect();
        for p in distinct {
            self.push(FactClass::Mention, None, Some(p));
        }
    }
}

/// A valid receipt is a zap from the request's author to the receipt's `p`; an invalid one
/// is kept (actor: the receipt's signer) with the reason, flagged so that nothing counts it.
fn zap_fact(ev: &RawEvent) -> Fact {
    match zap::validate(ev) {
        Ok(z) => {
            let mut flags = FactFlags::default();
            if z.sender == z.recipient {
                flags.0 |= FactFlags::SELF;
            }
            Fact {
                class: FactClass::Zap,
                seq: 0,
                actor: z.sender,
                subject: Some(z.recipient),
                target: z.target,
                amount_msats: i64::try_from(z.amount_msats).ok(),
                flags,
                // Ingest's LNURL check may upgrade the verdict before the fact is stored.
                dims: Some(serde_json::json!({
                    "payment_hash": hex::encode(z.payment_hash),
                    "lnurl": crate::lnurl::LnurlVerdict::Unverified.name(),
                })),
                expires_at: None,
            }
        }
        Err(failure) => Fact {
            class: FactClass::Zap,
            seq: 0,
            actor: ev.pubkey,
            subject: first_tag(&ev.tags, "p").and_then(|t| parse_hex32(&t[1])),
            target: None,
            amount_msats: None,
            flags: FactFlags(FactFlags::INVALID),
            dims: Some(
                serde_json::json!({ "failure": failure.code(), "detail": failure.to_string() }),
            ),
            expires_at: None,
        },
    }
}

fn first_tag<'a>(tags: &'a [Tag], name: &str) -> Option<&'a Tag> {
    tags.iter().find(|t| t[0] == name && t.len() > 1)
}

fn last_tag<'a>(tags: &'a [Tag], name: &str) -> Option<&'a Tag> {
    tags.iter().rev().find(|t| t[0] == name && t.len() > 1)
}

/// NIP-10: the last `e` marked `reply`, else the first marked `root`, else the last unmarked
/// `e` (no or empty marker; a legacy `mention` marker never makes a reply).
fn nip10_parent(tags: &[Tag]) -> Option<([u8; 32], Option<Pubkey>)> {
    let es: Vec<&Tag> = tags
        .iter()
        .filter(|t| t[0] == "e" && t.len() > 1 && parse_hex32(&t[1]).is_some())
        .collect();
    fn marker(t: &Tag) -> &str {
        t.get(3).map_or("", String::as_str)
    }
    let parent = es
        .iter()
        .rev()
        .find(|t| marker(t) == "reply")
        .or_else(|| es.iter().find(|t| marker(t) == "root"))
        .or_else(|| es.iter().rev().find(|t| marker(t).is_empty()))?;
    let id = parse_hex32(&parent[1])?;
    Some((id, parent.get(4).and_then(|p| parse_hex32(p))))
}

/// NIP-22: parent = the last lowercase `e`, else the last lowercase `a`, else the `p` hint.
fn nip22_parent(tags: &[Tag]) -> Option<(Option<Target>, Option<Pubkey>)> {
    let hint = last_tag(tags, "p").and_then(|t| parse_hex32(&t[1]));
    if let Some(t) = last_tag(tags, "e")
        && let Some(id) = parse_hex32(&t[1])
    {
        return Some((
            Some(Target::Event(id)),
            t.get(3).and_then(|p| parse_hex32(p)).or(hint),
        ));
    }
    if let Some(t) = last_tag(tags, "a") {
        return Some((Some(Target::Coordinate(t[1].clone())), hint));
    }
    hint.map(|h| (None, Some(h)))
}

fn coordinate_author(coord: &str) -> Option<Pubkey> {
    coord.split(':').nth(1).and_then(parse_hex32)
}

/// NIP-25 reaction class.
fn reaction_class(ev: &RawEvent) -> &'static str {
    let c = ev.content.as_str();
    if c.is_empty() || c == "+" {
        "like"
    } else if c == "-" {
        "dislike"
    } else if c.len() > 2
        && c.starts_with(':')
        && c.ends_with(':')
        && ev
            .tags
            .iter()
            .any(|t| t[0] == "emoji" && t.get(1).is_some_and(|n| c[1..c.len() - 1] == **n))
    {
        "custom_emoji"
    } else {
        "emoji"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    const P: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn ev(kind: u16, content: &str, tags: &[&[&str]]) -> RawEvent {
        RawEvent {
            id: [9; 32],
            pubkey: [7; 32],
            created_at: 1_700_000_000,
            kind,
            tags: tags
                .iter()
                .map(|t| t.iter().map(|s| s.to_string()).collect())
                .collect(),
            content: content.into(),
            sig: [0; 64],
        }
    }

    fn h(s: &str) -> [u8; 32] {
        parse_hex32(s).unwrap()
    }

    #[test]
    fn nip10_parent_rules() {
        let cases: &[(&[&[&str]], Option<&str>)] = &[
            (&[], None),
            (&[&["e", A, "", "root"]], Some(A)),
            (&[&["e", A, "", "root"], &["e", B, "", "reply"]], Some(B)),
            (&[&["e", A, "", "reply"], &["e", B, "", "reply"]], Some(B)),
            (&[&["e", A], &["e", B]], Some(B)),
            (&[&["e", A, "", "mention"]], None),
            (&[&["e", A], &["e", B, "", "mention"]], Some(A)),
            (&[&["q", A]], None),
            (&[&["e", A, "", "root"], &["e", B, "", "root"]], Some(A)),
        ];
        for (tags, want) in cases {
            let facts = normalize(&ev(1, "x", tags));
            let got = facts
                .iter()
                .find(|f| f.class == FactClass::Reply)
                .and_then(Fact::target_event);
            assert_eq!(got, want.map(h).as_ref(), "tags {tags:?}");
            assert_eq!(
                facts.iter().any(|f| f.class == FactClass::Note),
                want.is_none()
            );
        }
    }

    #[test]
    fn reply_hint_is_unresolved_subject() {
        let facts = normalize(&ev(
            1,
            "x",
            &[&["e", A, "", "reply", P], &["p", P], &["p", P]],
        ));
        let reply = &facts[0];
        assert_eq!(reply.subject, Some(h(P)));
        assert!(reply.flags.has(FactFlags::UNRESOLVED));
        let mentions: Vec<_> = facts
            .iter()
            .filter(|f| f.class == FactClass::Mention)
            .collect();
        assert_eq!(mentions.len(), 1, "duplicate p tags collapse");
    }

    #[test]
    fn reaction_target_and_class() {
        let facts = normalize(&ev(7, "+", &[&["e", A], &["e", B], &["p", C], &["p", P]]));
        assert_eq!(facts.len(), 1);
        assert_eq!(facts[0].target_event(), Some(&h(B)));
        assert_eq!(facts[0].subject, Some(h(P)));
        for (content, tags, class) in [
            ("", &[][..], "like"),
            ("-", &[], "dislike"),
            ("🤙", &[], "emoji"),
            (
                ":soapbox:",
                &[&["emoji", "soapbox", "https://x/y.png"][..]],
                "custom_emoji",
            ),
            (":soapbox:", &[], "emoji"),
        ] {
            let mut tags: Vec<&[&str]> = tags.to_vec();
            tags.push(&["e", A]);
            let f = normalize(&ev(7, content, &tags));
            assert_eq!(f[0].dims.as_ref().unwrap()["class"], class, "{content}");
        }
    }

    #[test]
    fn comments_and_quotes() {
        let facts = normalize(&ev(
            1111,
            "x",
            &[
                &["E", A, "", P],
                &["e", B, "", C],
                &["p", C],
                &["q", A, "", P],
            ],
        ));
        assert_eq!(facts[0].class, FactClass::Comment);
        assert_eq!(facts[0].target_event(), Some(&h(B)));
        assert_eq!(facts[0].subject, Some(h(C)));
        assert_eq!(facts[1].class, FactClass::Quote);
        assert_eq!(facts[1].subject, Some(h(P)));
    }

    #[test]
    fn a_coordinate_target_credits_its_author_over_the_hint() {
        let coord = format!("30023:{A}:post");
        let cases: &[(u16, &[&[&str]])] = &[
            (7, &[&["a", &coord], &["p", P]]),
            (16, &[&["a", &coord], &["p", P], &["k", "30023"]]),
            (1111, &[&["A", &coord], &["a", &coord], &["p", P]]),
            (1, &[&["q", &coord, "", P]]),
        ];
        for (kind, tags) in cases {
            let facts = normalize(&ev(*kind, "+", tags));
            let f = facts.iter().find(|f| f.target.is_some()).unwrap();
            assert_eq!(f.target_coordinate(), Some(coord.as_str()), "{kind}");
            assert_eq!(f.subject, Some(h(A)), "kind {kind}");
            assert!(!f.flags.has(FactFlags::UNRESOLVED));
        }
        // A malformed coordinate leaves the hint.
        let facts = normalize(&ev(7, "+", &[&["a", "30023:nope:x"], &["p", P]]));
        assert_eq!(facts[0].subject, Some(h(P)));
    }

    #[test]
    fn expiration_applies_to_every_fact_of_the_event() {
        let facts = normalize(&ev(
            1,
            "x",
            &[
                &["e", A, "", "reply"],
                &["p", P],
                &["expiration", "1700003600"],
            ],
        ));
        assert_eq!(facts.len(), 2);
        assert!(facts.iter().all(|f| f.expires_at == Some(1_700_003_600)));
        for bad in ["soon", "-5", "1.5"] {
            let facts = normalize(&ev(1, "x", &[&["expiration", bad]]));
            assert_eq!(facts[0].expires_at, None, "{bad}");
        }
    }

    #[test]
    fn articles_deletions_and_self_flag() {
        let mut article = ev(30023, "body", &[&["d", "my-post"]]);
        article.pubkey = h(P);
        let f = normalize(&article);
        assert_eq!(
            f[0].target_coordinate(),
            Some(format!("30023:{P}:my-post").as_str())
        );

        let f = normalize(&ev(5, "", &[&["e", A], &["a", "30023:x:y"], &["k", "1"]]));
        assert_eq!(f.len(), 2);
        assert!(f.iter().all(|f| f.class == FactClass::Deletion));

        let mut own = ev(7, "+", &[&["e", A], &["p", P]]);
        own.pubkey = h(P);
        assert!(normalize(&own)[0].flags.has(FactFlags::SELF));
    }
}
