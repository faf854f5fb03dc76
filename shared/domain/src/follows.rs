//! NIP-02 follow lists as flows: the facts a newly arrived kind 3 adds, given the follower's
//! previous accepted list. Pure: storage loads the previous state and saves the next one.

use std::collections::BTreeSet;

use crate::event::{EventId, Pubkey, RawEvent, parse_hex32};
use crate::facts::{Fact, FactClass, FactFlags};
use crate::kinds;

/// A list may name at most this many distinct follows; the rest are ignored. Fact `seq` is
/// an `i16` and no relay accepts an event this large (about 2.3 MB of `p` tags).
pub const MAX_FOLLOWS: usize = 32_000;

/// What a follower's accepted list says: the head event and the follows in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowState {
    pub event_id: EventId,
    pub created_at: i64,
    /// The follows in force. A wipe moves the head but keeps these (see [`ListVerdict::Wipe`]).
    pub follows: BTreeSet<Pubkey>,
}

/// How a kind 3 was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListVerdict {
    /// The follower's first list: it sets the follows, but they are not gains.
    Baseline,
    /// A newer list: diffed against the follows in force.
    Update,
    /// A newer list with no valid follows replacing a non-empty one. Clients that fail to
    /// load a list publish these by mistake and restore the list soon after; reading it as
    /// "unfollowed everyone" would invent a loss and a gain for every follow. The head moves,
    /// the follows in force do not, and the next list is diffed against them.
    Wipe,
    /// Not newer than the accepted list (an older version arriving late): ignored.
    Stale,
}

impl ListVerdict {
    pub fn name(self) -> &'static str {
        match self {
            ListVerdict::Baseline => "baseline",
            ListVerdict::Update => "update",
            ListVerdict::Wipe => "wipe",
            ListVerdict::Stale => "stale",
        }
    }
}

/// The outcome of one kind 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpdate {
    pub verdict: ListVerdict,
    /// Baseline, gained and lost facts, `seq` from 1 (0 is the list's own fact).
    pub facts: Vec<Fact>,
    /// The state to keep (unchanged for a stale list).
    pub next: Option<FollowState>,
}

impl FollowUpdate {
    /// The dimensions of the list's own fact: how it was taken and how many follows it names.
    pub fn list_dims(&self, list: &RawEvent) -> serde_json::Value {
        serde_json::json!({ "verdict": self.verdict.name(), "follows": follow_set(list).len() })
    }
}

/// The distinct follows of a list: `p` values of 64 lowercase hex characters other than the
/// author, at most [`MAX_FOLLOWS`].
pub fn follow_set(ev: &RawEvent) -> BTreeSet<Pubkey> {
    let mut set = BTreeSet::new();
    for t in ev.tags.iter().filter(|t| t[0] == "p" && t.len() > 1) {
        if let Some(pk) = parse_hex32(&t[1])
            && pk != ev.pubkey
        {
            set.insert(pk);
            if set.len() == MAX_FOLLOWS {
                break;
            }
        }
    }
    set
}

/// Applies a follower's kind 3 to the state of its previous accepted list.
pub fn apply_list(previous: Option<&FollowState>, list: &RawEvent) -> FollowUpdate {
    debug_assert_eq!(list.kind, kinds::FOLLOW_LIST);
    let follows = follow_set(list);
    let head = |follows| FollowState {
        event_id: list.id,
        created_at: list.created_at,
        follows,
    };
    let mut facts = Vec::new();
    let mut push = |class, followee: &Pubkey| {
        facts.push(Fact {
            class,
            seq: i16::try_from(facts.len() + 1).unwrap_or(i16::MAX),
            actor: list.pubkey,
            subject: Some(*followee),
            target: None,
            amount_msats: None,
            flags: FactFlags::default(),
            dims: None,
            expires_at: None,
        });
    };
    let (verdict, next) = match previous {
        None => {
            for f in &follows {
                push(FactClass::FollowBaseline, f);
            }
            (ListVerdict::Baseline, head(follows))
        }
        Some(prev)
            if !kinds::supersedes(
                (list.created_at, &list.id),
                (prev.created_at, &prev.event_id),
            ) =>
        {
            return FollowUpdate {
                verdict: ListVerdict::Stale,
                facts,
                next: None,
            };
        }
        Some(prev) if follows.is_empty() && !prev.follows.is_empty() => {
            (ListVerdict::Wipe, head(prev.follows.clone()))
        }
        Some(prev) => {
            for f in follows.difference(&prev.follows) {
                push(FactClass::FollowGained, f);
            }
            for f in prev.follows.difference(&follows) {
                push(FactClass::FollowLost, f);
            }
            (ListVerdict::Update, head(follows))
        }
    };
    FollowUpdate {
        verdict,
        facts,
        next: Some(next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pk(b: u8) -> Pubkey {
        [b; 32]
    }

    fn list(created_at: i64, id: u8, follows: &[&str]) -> RawEvent {
        RawEvent {
            id: [id; 32],
            pubkey: pk(1),
            created_at,
            kind: 3,
            tags: follows
                .iter()
                .map(|f| vec!["p".to_string(), f.to_string()])
                .collect(),
            content: String::new(),
            sig: [0; 64],
        }
    }

    fn hex(b: u8) -> String {
        hex::encode(pk(b))
    }

    fn flows(u: &FollowUpdate) -> Vec<(FactClass, Pubkey)> {
        u.facts
            .iter()
            .map(|f| (f.class, f.subject.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn first_list_is_a_baseline_and_later_lists_are_diffed() {
        let (a, b, c) = (hex(0xa), hex(0xb), hex(0xc));
        let first = apply_list(None, &list(100, 9, &[&a, &b]));
        assert_eq!(first.verdict, ListVerdict::Baseline);
        assert_eq!(
            flows(&first),
            vec![
                (FactClass::FollowBaseline, pk(0xa)),
                (FactClass::FollowBaseline, pk(0xb))
            ]
        );
        let second = apply_list(first.next.as_ref(), &list(200, 8, &[&b, &c]));
        assert_eq!(second.verdict, ListVerdict::Update);
        assert_eq!(
            flows(&second),
            vec![
                (FactClass::FollowGained, pk(0xc)),
                (FactClass::FollowLost, pk(0xa))
            ]
        );
        let seqs: Vec<i16> = second.facts.iter().map(|f| f.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
    }

    #[test]
    fn an_older_list_arriving_late_is_ignored() {
        let (a, b) = (hex(0xa), hex(0xb));
        let newer = apply_list(None, &list(200, 5, &[&a]));
        let older = apply_list(newer.next.as_ref(), &list(100, 1, &[&b]));
        assert_eq!(older.verdict, ListVerdict::Stale);
        assert!(older.facts.is_empty() && older.next.is_none());
        // Equal created_at: the lower id is the newer version.
        let tie_higher = apply_list(newer.next.as_ref(), &list(200, 6, &[&b]));
        assert_eq!(tie_higher.verdict, ListVerdict::Stale);
        let tie_lower = apply_list(newer.next.as_ref(), &list(200, 4, &[&b]));
        assert_eq!(tie_lower.verdict, ListVerdict::Update);
        let same = apply_list(newer.next.as_ref(), &list(200, 5, &[&b]));
        assert_eq!(same.verdict, ListVerdict::Stale, "the same event twice");
    }

    #[test]
    fn a_wiped_list_moves_the_head_but_loses_nobody() {
        let (a, b, c) = (hex(0xa), hex(0xb), hex(0xc));
        let first = apply_list(None, &list(100, 9, &[&a, &b]));
        let wipe = apply_list(first.next.as_ref(), &list(200, 9, &[]));
        assert_eq!(wipe.verdict, ListVerdict::Wipe);
        assert!(wipe.facts.is_empty());
        let kept = wipe.next.clone().unwrap();
        assert_eq!(kept.created_at, 200);
        assert_eq!(kept.follows.len(), 2);
        // The restored list is diffed against the list before the wipe.
        let restored = apply_list(Some(&kept), &list(300, 9, &[&a, &b, &c]));
        assert_eq!(flows(&restored), vec![(FactClass::FollowGained, pk(0xc))]);
        // An empty first list is a baseline of nobody, not a wipe.
        let empty = apply_list(None, &list(100, 9, &[]));
        assert_eq!(empty.verdict, ListVerdict::Baseline);
    }

    #[test]
    fn duplicate_malformed_and_self_follows_are_ignored() {
        let a = hex(0xa);
        let upper = a.to_uppercase();
        let me = hex(1);
        let ev = list(100, 9, &[&a, &a, &upper, "npub1xyz", &a[..63], &me]);
        assert_eq!(follow_set(&ev), BTreeSet::from([pk(0xa)]));
    }
}
