//! A LUD-16 lightning-address server on loopback, for the NIP-57 LNURL check.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// What the server answers for one name at `/.well-known/lnurlp/<name>`.
#[derive(Debug, Clone)]
pub enum LnurlAnswer {
    /// A pay request with `allowsNostr: true` and this `nostrPubkey` (hex).
    Nostr(String),
    /// A pay request without Nostr support.
    NoNostr,
    /// A body of this many bytes.
    Huge(usize),
    /// Answers after this long.
    Slow(Duration),
}

/// A running server; names it does not know get a 404.
#[derive(Debug, Clone)]
pub struct LnurlServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    hits: Arc<AtomicUsize>,
}

type Shared = (Arc<HashMap<String, LnurlAnswer>>, Arc<AtomicUsize>);

impl LnurlServer {
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(answers: HashMap<String, LnurlAnswer>) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/.well-known/lnurlp/{name}", get(answer))
            .with_state((Arc::new(answers), hits.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        LnurlServer { base, hits }
    }

    /// The pay URL of `name`.
    pub fn pay_url(&self, name: &str) -> String {
        format!("{}/.well-known/lnurlp/{name}", self.base)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(State((answers, hits)): State<Shared>, Path(name): Path<String>) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let pay = |nostr: Option<&str>| {
        let mut body = serde_json::json!({
            "tag": "payRequest",
            "callback": "https://pay.example/cb",
            "minSendable": 1000,
            "maxSendable": 100_000_000_000u64,
            "metadata": "[[\"text/plain\",\"zap me\"]]",
        });
        if let Some(pk) = nostr {
            body["allowsNostr"] = true.into();
            body["nostrPubkey"] = pk.into();
        }
        axum::Json(body).into_response()
    };
    match answers.get(&name) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(LnurlAnswer::Nostr(pk)) => pay(Some(pk)),
        Some(LnurlAnswer::NoNostr) => pay(None),
        Some(LnurlAnswer::Huge(n)) => " ".repeat(*n).into_response(),
        Some(LnurlAnswer::Slow(wait)) => {
            tokio::time::sleep(*wait).await;
            pay(None)
        }
    }
}
