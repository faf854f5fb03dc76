//! NIP-02 state: each follower's accepted list and the follow edges it implies. New lists
//! are applied in arrival order (`na_domain::follows::apply_list` decides); the flow facts
//! they produce go in with the batch's other facts.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use na_domain::follows::{self, FollowState, FollowUpdate};
use na_domain::{EventId, FactClass, Pubkey, kinds};

use crate::Result;
use crate::batch::NewEvent;
use crate::timestamp;

const LOAD: &str = "
    SELECT follower, event_id, extract(epoch FROM created_at)::bigint, follows
    FROM follow_lists WHERE follower = ANY($1)";

const SAVE: &str = "
    INSERT INTO follow_lists (follower, event_id, created_at, follows) VALUES ($1, $2, $3, $4)
    ON CONFLICT (follower) DO UPDATE
        SET event_id = EXCLUDED.event_id, created_at = EXCLUDED.created_at, follows = EXCLUDED.follows";

const ADD_EDGES: &str = "
    INSERT INTO follow_edges (followee, follower, since)
    SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::timestamptz[])
    ON CONFLICT DO NOTHING";

const REMOVE_EDGES: &str = "
    DELETE FROM follow_edges e
    USING unnest($1::bytea[], $2::bytea[]) AS u(followee, follower)
    WHERE e.followee = u.followee AND e.follower = u.follower";

/// Applies the new kind 3 lists, in batch (= arrival) order, to their followers' accepted
/// lists; saves the resulting lists and edges. Returns each list's update by event id.
pub(crate) async fn apply(
    tx: &deadpool_postgres::Transaction<'_>,
    events: &[&NewEvent],
) -> Result<HashMap<EventId, FollowUpdate>> {
    let lists: Vec<&NewEvent> = events
        .iter()
        .filter(|e| e.event.kind == kinds::FOLLOW_LIST)
        .copied()
        .collect();
    if lists.is_empty() {
        return Ok(HashMap::new());
    }
    let followers: BTreeSet<&[u8]> = lists.iter().map(|e| &e.event.pubkey[..]).collect();
    let followers: Vec<&[u8]> = followers.into_iter().collect();
    let stmt = tx.prepare_cached(LOAD).await?;
    let mut before: HashMap<Pubkey, FollowState> = HashMap::new();
    for row in tx.query(&stmt, &[&followers]).await? {
        let (Ok(follower), Ok(event_id)) = (
            Pubkey::try_from(row.get::<_, &[u8]>(0)),
            EventId::try_from(row.get::<_, &[u8]>(1)),
        ) else {
            continue;
        };
        let follows = row
            .get::<_, Vec<&[u8]>>(3)
            .into_iter()
            .filter_map(|f| Pubkey::try_from(f).ok())
            .collect();
        before.insert(
            follower,
            FollowState {
                event_id,
                created_at: row.get(2),
                follows,
            },
        );
    }

    let mut state = before.clone();
    let mut updates = HashMap::with_capacity(lists.len());
    // When each follow in force began: the list that added it last.
    let mut began: HashMap<(Pubkey, Pubkey), i64> = HashMap::new();
    for e in lists {
        let update = follows::apply_list(state.get(&e.event.pubkey), &e.event);
        for f in &update.facts {
            if matches!(f.class, FactClass::FollowBaseline | FactClass::FollowGained)
                && let Some(followee) = f.subject
            {
                began.insert((followee, f.actor), e.event.created_at);
            }
        }
        if let Some(next) = &update.next {
            state.insert(e.event.pubkey, next.clone());
        }
        updates.insert(e.event.id, update);
    }

    // Only the net change reaches the edges: a follow gained and lost within one batch
    // leaves none.
    let empty = BTreeSet::new();
    let (mut add_followee, mut add_follower, mut add_since) = (Vec::new(), Vec::new(), Vec::new());
    let (mut del_followee, mut del_follower) = (Vec::new(), Vec::new());
    let save = tx.prepare_cached(SAVE).await?;
    for (follower, now) in &state {
        let old = before.get(follower);
        if old == Some(now) {
            continue;
        }
        let old_follows = old.map_or(&empty, |s| &s.follows);
        for followee in now.follows.difference(old_follows) {
            let since = began.get(&(*followee, *follower)).copied();
            add_followee.push(&followee[..]);
            add_follower.push(&follower[..]);
            add_since.push(timestamp(since.unwrap_or(now.created_at)));
        }
        for followee in old_follows.difference(&now.follows) {
            del_followee.push(&followee[..]);
            del_follower.push(&follower[..]);
        }
        let follows: Vec<&[u8]> = now.follows.iter().map(|f| &f[..]).collect();
        let at: DateTime<Utc> = timestamp(now.created_at);
        tx.execute(&save, &[&&follower[..], &&now.event_id[..], &at, &follows])
            .await?;
    }
    if !del_followee.is_empty() {
        let stmt = tx.prepare_cached(REMOVE_EDGES).await?;
        tx.execute(&stmt, &[&del_followee, &del_follower]).await?;
    }
    if !add_followee.is_empty() {
        let stmt = tx.prepare_cached(ADD_EDGES).await?;
        tx.execute(&stmt, &[&add_followee, &add_follower, &add_since])
            .await?;
    }
    Ok(updates)
}
