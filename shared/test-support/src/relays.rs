use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use nostr_relay_builder::prelude::*;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Starts nostr-relay-builder's relay on loopback holding `events` (in an unbounded
/// in-memory database, with the write rate limit raised). `max_filter_limit` caps how many
/// events one REQ returns, as public relays do.
///
/// # Panics
/// When the relay cannot start.
pub async fn start_relay(events: &[Event], max_filter_limit: Option<usize>) -> LocalRelay {
    let database = MemoryDatabase::with_opts(MemoryDatabaseOptions {
        events: true,
        max_events: None,
    });
    for ev in events {
        database.save_event(ev).await.expect("seed relay database");
    }
    let mut builder = RelayBuilder::default()
        .addr([127, 0, 0, 1].into())
        .database(database)
        .rate_limit(RateLimit {
            max_reqs: 10_000,
            notes_per_minute: 1_000_000,
        });
    if let Some(limit) = max_filter_limit {
        builder = builder.max_filter_limit(limit).default_filter_limit(limit);
    }
    let relay = LocalRelay::new(builder);
    relay.run().await.expect("start local relay");
    relay
}

/// A copy of `event` with a signature that does not verify (the id still matches).
pub fn forge_signature(event: &Event) -> String {
    let mut json: serde_json::Value = serde_json::from_str(&event.as_json()).expect("event json");
    let sig = json["sig"].as_str().unwrap_or_default();
    // Flip the first hex digit: still well-formed, no longer a valid signature.
    let flipped = match sig.strip_prefix('0') {
        Some(rest) => format!("1{rest}"),
        None => format!("0{}", sig.get(1..).unwrap_or_default()),
    };
    json["sig"] = flipped.into();
    json.to_string()
}

/// A websocket relay on loopback that answers every REQ with a fixed script: each entry is
/// an event object sent as `["EVENT", <sub>, <entry>]` verbatim (so it may be malformed),
/// then `EOSE`. Entries with a readable `created_at` honour the filter's `since`/`until`;
/// the others are sent only to REQs without `until` (a first page). A REQ with `limit: 0`
/// (a live subscription) gets only `EOSE`, and NIP-77 `NEG-OPEN` gets `NEG-ERR`.
#[derive(Debug)]
pub struct ScriptedRelay {
    pub url: String,
    pub addr: SocketAddr,
}

impl ScriptedRelay {
    /// # Panics
    /// When it cannot bind a loopback port.
    pub async fn start(script: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let script = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        let Message::Text(text) = msg else { continue };
                        let Ok(serde_json::Value::Array(req)) = serde_json::from_str(text.as_str())
                        else {
                            continue;
                        };
                        match req.first().and_then(|v| v.as_str()) {
                            Some("REQ") => {}
                            Some("NEG-OPEN") => {
                                // Like many relays: NIP-77 is not supported.
                                let sub = req.get(1).cloned().unwrap_or_default();
                                let err = serde_json::json!([
                                    "NEG-ERR",
                                    sub,
                                    "blocked: NIP-77 is not supported"
                                ]);
                                if ws.send(Message::text(err.to_string())).await.is_err() {
                                    return;
                                }
                                continue;
                            }
                            _ => continue,
                        }
                        let sub = req
                            .get(1)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_owned();
                        let filter = req.get(2).cloned().unwrap_or_default();
                        let bound = |k: &str| filter.get(k).and_then(serde_json::Value::as_i64);
                        let (since, until) = (bound("since"), bound("until"));
                        let live = bound("limit") == Some(0);
                        if !live {
                            for entry in script.iter().filter(|e| wanted(e, since, until)) {
                                let sub_json = serde_json::to_string(&sub).unwrap_or_default();
                                let frame = format!("[\"EVENT\",{sub_json},{entry}]");
                                if ws.send(Message::text(frame)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        let eose = serde_json::json!(["EOSE", sub]).to_string();
                        if ws.send(Message::text(eose)).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ScriptedRelay {
            url: format!("ws://{addr}"),
            addr,
        }
    }
}

fn wanted(entry: &str, since: Option<i64>, until: Option<i64>) -> bool {
    let at = serde_json::from_str::<serde_json::Value>(entry)
        .ok()
        .and_then(|v| v.get("created_at").and_then(serde_json::Value::as_i64));
    match at {
        Some(t) => since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u),
        None => until.is_none(),
    }
}
