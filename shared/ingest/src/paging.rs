//! Backward paging over a relay: `until` moves back page by page.
//!
//! NIP-01 has no offset, so a second that holds more events than the relay returns in one
//! page cannot be paged by `until` alone. Such a second is fetched again kind by kind; when a
//! kind alone still fills a page, the second is reported as truncated rather than silently
//! cut short.

use std::collections::HashSet;
use std::future::Future;

use na_domain::EventId;
use nostr_sdk::prelude::*;
use serde::Serialize;

use crate::Result;
use crate::pipeline::Page;

/// Anything that can answer one REQ with the page it delivered (after storing it).
pub trait PageSource {
    fn page(&self, relay: &RelayUrl, filter: Filter) -> impl Future<Output = Result<Page>> + Send;
}

/// Where a paging walk is, for progress reports.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PagingProgress {
    pub pages: u64,
    /// Events delivered (with repeats at page boundaries).
    pub delivered: u64,
    /// The oldest `created_at` reached so far.
    pub reached: Option<i64>,
    /// Seconds with more events of one kind than a page holds.
    pub truncated_seconds: Vec<i64>,
    pub done: bool,
}

/// Pages `base` backwards from `until` (now when `None`) to `since` (the beginning when
/// `None`), calling `progress` after every page.
///
/// # Errors
/// The first page request that fails.
pub async fn page_backwards<S: PageSource>(
    source: &S,
    relay: &RelayUrl,
    base: &Filter,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: usize,
    mut progress: impl FnMut(&PagingProgress),
) -> Result<PagingProgress> {
    let mut state = PagingProgress::default();
    let mut until = until;
    let mut boundary: HashSet<EventId> = HashSet::new();
    // The most a page has held: the relay's effective limit, which may be below ours.
    let mut page_cap = 0usize;
    loop {
        let mut filter = base.clone().limit(limit);
        if let Some(s) = since {
            filter = filter.since(s);
        }
        if let Some(u) = until {
            filter = filter.until(u);
        }
        let page = source.page(relay, filter).await?;
        state.pages += 1;
        state.delivered += page.delivered as u64;
        page_cap = page_cap.max(page.delivered);
        let fresh = page
            .items
            .iter()
            .filter(|(id, _)| !boundary.contains(id))
            .count();
        let (Some(oldest), Some(newest)) = (
            page.items.iter().map(|i| i.1).min(),
            page.items.iter().map(|i| i.1).max(),
        ) else {
            break;
        };
        if fresh == 0 {
            break; // only the boundary second came back: nothing older is left
        }
        state.reached = Some(state.reached.map_or(oldest, |r| r.min(oldest)));
        if oldest == newest {
            // One second fills the page: take it kind by kind, then step past it.
            dense_second(source, relay, base, oldest, limit, page_cap, &mut state).await?;
            if oldest == 0 || since.is_some_and(|s| (oldest as u64) <= s.as_secs()) {
                break;
            }
            until = Some(Timestamp::from((oldest - 1) as u64));
            boundary.clear();
        } else {
            until = Some(Timestamp::from(oldest as u64));
            boundary = page
                .items
                .iter()
                .filter(|i| i.1 == oldest)
                .map(|i| i.0)
                .collect();
        }
        progress(&state);
    }
    state.done = true;
    progress(&state);
    Ok(state)
}

async fn dense_second<S: PageSource>(
    source: &S,
    relay: &RelayUrl,
    base: &Filter,
    second: i64,
    limit: usize,
    page_cap: usize,
    state: &mut PagingProgress,
) -> Result<()> {
    let at = Timestamp::from(second as u64);
    let kinds: Vec<Kind> = base
        .kinds
        .as_ref()
        .map(|k| k.iter().copied().collect())
        .unwrap_or_default();
    let mut truncated = kinds.is_empty();
    for kind in kinds {
        // `Filter::kinds` adds to the set; a single kind has to replace it.
        let mut filter = base.clone().since(at).until(at).limit(limit);
        filter.kinds = Some(std::iter::once(kind).collect());
        let page = source.page(relay, filter).await?;
        state.pages += 1;
        state.delivered += page.delivered as u64;
        truncated |= page.delivered >= page_cap.min(limit);
    }
    if truncated {
        state.truncated_seconds.push(second);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A relay in memory that sorts like real ones (newest first) and caps `limit`.
    struct FakeRelay {
        events: Vec<(EventId, i64, u16)>,
        cap: usize,
        requests: Mutex<u32>,
    }

    impl PageSource for FakeRelay {
        async fn page(&self, _: &RelayUrl, f: Filter) -> Result<Page> {
            *self.requests.lock().unwrap() += 1;
            let mut hits: Vec<_> = self
                .events
                .iter()
                .filter(|(_, t, k)| {
                    f.since.is_none_or(|s| *t as u64 >= s.as_secs())
                        && f.until.is_none_or(|u| *t as u64 <= u.as_secs())
                        && f.kinds
                            .as_ref()
                            .is_none_or(|ks| ks.contains(&Kind::from(*k)))
                })
                .collect();
            hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            hits.truncate(f.limit.unwrap_or(usize::MAX).min(self.cap));
            Ok(Page {
                delivered: hits.len(),
                items: hits.iter().map(|(id, t, _)| (*id, *t)).collect(),
            })
        }
    }

    fn relay(events: Vec<(EventId, i64, u16)>, cap: usize) -> FakeRelay {
        FakeRelay {
            events,
            cap,
            requests: Mutex::new(0),
        }
    }

    fn id(n: u32) -> EventId {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id
    }

    async fn walk(
        r: &FakeRelay,
        since: Option<u64>,
        limit: usize,
    ) -> (HashSet<EventId>, PagingProgress) {
        let seen = Mutex::new(HashSet::new());
        struct Recording<'a>(&'a FakeRelay, &'a Mutex<HashSet<EventId>>);
        impl PageSource for Recording<'_> {
            async fn page(&self, relay: &RelayUrl, f: Filter) -> Result<Page> {
                let page = self.0.page(relay, f).await?;
                self.1
                    .lock()
                    .unwrap()
                    .extend(page.items.iter().map(|i| i.0));
                Ok(page)
            }
        }
        let url = RelayUrl::parse("ws://127.0.0.1:1").unwrap();
        let base = Filter::new().kinds([Kind::from(1), Kind::from(7)]);
        let p = page_backwards(
            &Recording(r, &seen),
            &url,
            &base,
            since.map(Timestamp::from),
            None,
            limit,
            |_| {},
        )
        .await
        .unwrap();
        (seen.into_inner().unwrap(), p)
    }

    #[tokio::test]
    async fn pages_through_spread_events() {
        let events: Vec<_> = (0..95)
            .map(|i| {
                (
                    id(i),
                    1000 + i64::from(i / 3),
                    if i % 2 == 0 { 1 } else { 7 },
                )
            })
            .collect();
        let (seen, p) = walk(&relay(events.clone(), 1000), None, 10).await;
        assert_eq!(seen.len(), 95);
        assert!(p.truncated_seconds.is_empty());
        assert_eq!(p.reached, Some(1000));
    }

    #[tokio::test]
    async fn a_second_fuller_than_a_page_is_split_by_kind() {
        // 30 events in one second (15 of each kind), relay cap 16 < 30, our limit 10.
        let mut events: Vec<_> = (0..30)
            .map(|i| (id(i), 5000, if i < 15 { 1 } else { 7 }))
            .collect();
        events.extend((30..40).map(|i| (id(i), 4000 + i64::from(i), 1)));
        events.extend((40..45).map(|i| (id(i), 6000 + i64::from(i), 7)));
        let r = relay(events, 16);
        let (seen, p) = walk(&r, None, 10).await;
        // Kind by kind each holds 15 > limit 10: reported, not silently cut.
        assert_eq!(p.truncated_seconds, vec![5000]);
        assert!(seen.len() >= 10 + 10 + 5 + 10, "got {}", seen.len());

        // With a limit that fits each kind, the dense second is complete.
        let (seen, p) = walk(&r, None, 16).await;
        assert_eq!(seen.len(), 45);
        assert!(p.truncated_seconds.is_empty(), "{p:?}");
    }

    #[tokio::test]
    async fn respects_since_and_stops() {
        let events: Vec<_> = (0..50).map(|i| (id(i), 100 + i64::from(i), 1)).collect();
        let r = relay(events, 1000);
        let (seen, p) = walk(&r, Some(130), 10).await;
        assert_eq!(seen.len(), 20);
        assert_eq!(p.reached, Some(130));
        assert!(*r.requests.lock().unwrap() < 10);
    }
}
