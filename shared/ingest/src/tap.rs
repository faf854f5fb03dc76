//! A websocket transport that hands every relay message the pipeline needs to the ingest
//! pipeline before nostr-relay-pool sees it.
//!
//! Why: the pool verifies events itself and drops bad ones with only a log line, so they
//! could not be counted; its verification cache is keyed by id, so a tampered copy of an
//! already-seen event would pass; and it would keep every event in its database. The tap
//! takes EVENT messages out of the stream (the pipeline verifies each once), copies EOSE and
//! CLOSED (the pool still needs them for its subscription state), and reports connects,
//! failed connection attempts and disconnects in the same ordered channel, which is what
//! makes watermarks exact. Each event is stamped with when it was read: a relay's
//! messages keep their order, so everything a relay sent before a stamp has been taken
//! once a message with that stamp is.

use std::time::Duration;

use async_wsocket::{ConnectionMode, Message};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use nostr_sdk::pool::transport::error::TransportError;
use nostr_sdk::pool::transport::websocket::{
    DefaultWebsocketTransport, WebSocketSink, WebSocketStream, WebSocketTransport,
};
use nostr_sdk::util::BoxedFuture;
use nostr_sdk::{RelayUrl, Url};
use tokio::sync::mpsc;

/// A relay message in the order it arrived (per relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapMessage {
    Connected {
        relay: RelayUrl,
    },
    /// A connection attempt failed.
    Unreachable {
        relay: RelayUrl,
        error: String,
    },
    Disconnected {
        relay: RelayUrl,
    },
    /// The whole `["EVENT", sub, {...}]` text, unparsed, and when it was read.
    Event {
        relay: RelayUrl,
        text: String,
        at: DateTime<Utc>,
    },
    /// The whole `["EOSE", sub]` or `["CLOSED", sub, msg]` text.
    Control {
        relay: RelayUrl,
        text: String,
    },
}

#[derive(Debug, Clone)]
pub struct TapTransport {
    tx: mpsc::Sender<TapMessage>,
}

impl TapTransport {
    /// A transport and the receiving end of its messages. `capacity` bounds how far the
    /// relays can run ahead of the database: when it is full, websocket reads wait.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<TapMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        (TapTransport { tx }, rx)
    }
}

enum Class {
    Event,
    Control,
    Other,
}

/// Reads the message type from the start of a relay message without parsing the rest.
fn classify(text: &str) -> Class {
    let rest = text
        .trim_start()
        .strip_prefix('[')
        .unwrap_or("")
        .trim_start();
    if rest.starts_with("\"EVENT\"") {
        Class::Event
    } else if rest.starts_with("\"EOSE\"") || rest.starts_with("\"CLOSED\"") {
        Class::Control
    } else {
        Class::Other
    }
}

/// Sends `Disconnected` when the pool drops the stream, however the connection ended.
struct DisconnectGuard {
    tx: mpsc::Sender<TapMessage>,
    relay: RelayUrl,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let (tx, relay) = (self.tx.clone(), self.relay.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = tx.send(TapMessage::Disconnected { relay }).await;
            });
        }
    }
}

impl WebSocketTransport for TapTransport {
    fn support_ping(&self) -> bool {
        true
    }

    fn connect<'a>(
        &'a self,
        url: &'a Url,
        mode: &'a ConnectionMode,
        timeout: Duration,
    ) -> BoxedFuture<'a, Result<(WebSocketSink, WebSocketStream), TransportError>> {
        Box::pin(async move {
            let relay = RelayUrl::parse(url.as_str()).map_err(TransportError::backend)?;
            let tx = self.tx.clone();
            let (sink, stream) = match DefaultWebsocketTransport.connect(url, mode, timeout).await {
                Ok(connected) => connected,
                Err(e) => {
                    let _ = tx
                        .send(TapMessage::Unreachable {
                            relay,
                            error: e.to_string(),
                        })
                        .await;
                    return Err(e);
                }
            };
            tx.send(TapMessage::Connected {
                relay: relay.clone(),
            })
            .await
            .map_err(TransportError::backend)?;
            let guard = std::sync::Arc::new(DisconnectGuard {
                tx: tx.clone(),
                relay: relay.clone(),
            });
            let stream = stream.filter_map(move |item| {
                let (tx, relay, _guard) = (tx.clone(), relay.clone(), guard.clone());
                async move {
                    let Ok(Message::Text(text)) = &item else {
                        return Some(item);
                    };
                    match classify(text) {
                        Class::Event => {
                            let text = text.clone();
                            let at = Utc::now();
                            // A closed pipeline means the run is over: drop the event.
                            let _ = tx.send(TapMessage::Event { relay, text, at }).await;
                            None
                        }
                        Class::Control => {
                            let _ = tx
                                .send(TapMessage::Control {
                                    relay,
                                    text: text.clone(),
                                })
                                .await;
                            Some(item)
                        }
                        Class::Other => Some(item),
                    }
                }
            });
            Ok((sink, Box::pin(stream) as WebSocketStream))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_prefix() {
        assert!(matches!(classify(r#"["EVENT","s",{}]"#), Class::Event));
        assert!(matches!(classify(r#" [ "EVENT" ,"s",{}]"#), Class::Event));
        assert!(matches!(classify(r#"["EOSE","s"]"#), Class::Control));
        assert!(matches!(
            classify(r#"["CLOSED","s","error: x"]"#),
            Class::Control
        ));
        assert!(matches!(classify(r#"["NOTICE","x"]"#), Class::Other));
        assert!(matches!(classify("garbage"), Class::Other));
    }
}
