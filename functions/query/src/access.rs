//! Who may do what, as two layers: [`authenticate`] (around every route) turns the
//! `Authorization` header into a [`Principal`] — none, a NIP-98 event, an API key, the
//! bootstrap token — refusing a credential that does not check out; [`require`] (one per
//! sub-router, with the class of its routes) asks [`na_auth::decide`] whether that caller
//! may call the route for the pubkey it names. No handler checks a caller.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use na_auth::nip98::{self, Expected};
use na_auth::{Class, Principal, RateClass, RateLimits, Refusal, Scope, api_key};
use nostr::PublicKey;
use sha2::{Digest, Sha256};

use crate::browser::CorsOrigins;
use crate::ids::parse_pubkey;
use crate::{ApiError, AppState};

/// How callers are let in, besides NIP-98 and API keys.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminAccess {
    /// Every caller is admin (the local stack, on loopback).
    Open,
    /// `Authorization: Bearer <token>` is admin too (`ADMIN_TOKEN`): the bootstrap
    /// credential that makes the first admin API key.
    Token(String),
    /// Admin only by an admin-scoped API key.
    KeysOnly,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAccess::Open => f.write_str("Open"),
            AdminAccess::Token(_) => f.write_str("Token(<redacted>)"),
            AdminAccess::KeysOnly => f.write_str("KeysOnly"),
        }
    }
}

impl AdminAccess {
    /// `ADMIN_TOKEN` when set, else admin by API keys only.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Self {
        match var("ADMIN_TOKEN") {
            Some(t) if !t.is_empty() => AdminAccess::Token(t),
            _ => AdminAccess::KeysOnly,
        }
    }
}

/// The access settings: the admin model, and the public URL NIP-98 events must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub admin: AdminAccess,
    /// Requests per minute per caller and class of route.
    pub rate: RateLimits,
    /// The absolute URL clients address this API by (`NA_PUBLIC_URL`, no trailing slash):
    /// a NIP-98 event's `u` must be it, the path and the query string. `None` turns NIP-98
    /// away.
    pub public_url: Option<String>,
    /// The web origins a browser may call from (`NA_CORS_ORIGINS`).
    pub cors: CorsOrigins,
}

impl AccessConfig {
    /// `ADMIN_TOKEN`, `NA_PUBLIC_URL`, the rate limits (`NA_RATE_ANONYMOUS`,
    /// `NA_RATE_USER`, `NA_RATE_KEY`) and `NA_CORS_ORIGINS`.
    ///
    /// # Errors
    /// A public URL that is not an absolute http(s) URL, or a limit that does not parse,
    /// naming the variable.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let public_url = match var("NA_PUBLIC_URL").filter(|u| !u.is_empty()) {
            Some(u) => Some(public_url(&u).map_err(|e| format!("NA_PUBLIC_URL={u}: {e}"))?),
            None => None,
        };
        let cors = match var("NA_CORS_ORIGINS") {
            Some(v) => CorsOrigins::parse(&v).map_err(|e| format!("NA_CORS_ORIGINS={v}: {e}"))?,
            None => CorsOrigins::None,
        };
        Ok(AccessConfig {
            admin: AdminAccess::from_lookup(var),
            rate: RateLimits::from_lookup(var)?,
            public_url,
            cors,
        })
    }

    /// Every caller admin, NIP-98 against `public_url` (the local stack).
    pub fn open(public_url: Option<String>) -> Self {
        AccessConfig {
            admin: AdminAccess::Open,
            rate: RateLimits::DEFAULT,
            public_url,
            cors: CorsOrigins::None,
        }
    }
}

impl From<AdminAccess> for AccessConfig {
    /// `admin`, and no NIP-98.
    fn from(admin: AdminAccess) -> Self {
        AccessConfig {
            admin,
            rate: RateLimits::DEFAULT,
            public_url: None,
            cors: CorsOrigins::None,
        }
    }
}

/// `url` checked and without a trailing slash, as request paths are appended to it.
///
/// # Errors
/// Not an absolute http(s) URL with a host, or one with a query or fragment.
pub fn public_url(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err("not an absolute http(s) URL".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("a public URL has no query or fragment".into());
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unauthorized(detail) => ApiError::Unauthorized { detail },
            Refusal::Forbidden(detail) => ApiError::Forbidden { detail },
        }
    }
}

fn unauthorized(detail: impl Into<String>) -> ApiError {
    ApiError::Unauthorized {
        detail: detail.into(),
    }
}

/// The layer around every route: the caller, from the `Authorization` header, into the
/// request's extensions. A credential that does not check out is refused here, whatever
/// the route (a client that believes it is signed in should hear that it is not).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (principal, mut request) = principal_of(&state, request).await?;
    // Open (the local stack): a credential is still checked, but every caller is admin.
    let principal = match state.access.admin {
        AdminAccess::Open => Principal::Bootstrap,
        _ => principal,
    };
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

async fn principal_of(
    state: &AppState,
    request: Request,
) -> Result<(Principal, Request), ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok((Principal::Anonymous, request));
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not ASCII text"))?;
    let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim_start();
    if scheme.eq_ignore_ascii_case("nostr") {
        return nip98_principal(state, credential.to_owned(), request).await;
    }
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(unauthorized(
            "send Authorization: Nostr <NIP-98 event, base64> or Bearer <API key>",
        ));
    }
    let principal = bearer_principal(state, credential).await?;
    Ok((principal, request))
}

async fn bearer_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if let Some(presented) = api_key::parse(token) {
        let stored = state.db.api_key_for_check(presented.id).await?;
        let Some(stored) = stored.filter(|s| api_key::same_hash(&presented.hash, &s.hash)) else {
            return Err(unauthorized(
                "unknown API key: ask an admin for one (POST /api/v2/admin/keys)",
            ));
        };
        let key = stored.key;
        if let Some(at) = key.revoked_at {
            return Err(unauthorized(format!(
                "API key {} was revoked at {at}: ask an admin for a new one",
                key.id.simple()
            )));
        }
        if let Some(at) = key.expires_at.filter(|at| *at <= Utc::now()) {
            return Err(unauthorized(format!(
                "API key {} expired at {at}: ask an admin for a new one",
                key.id.simple()
            )));
        }
        let base = state.access.rate.key;
        // Checked when the key was made; a text that no longer parses keeps the deployment's.
        let limits = match key.rate_limits.as_deref().map(|t| base.parse_over(t)) {
            None => base,
            Some(Ok(own)) => own,
            Some(Err(e)) => {
                tracing::warn!(key = %key.id, error = e, "a key's stored rate limits do not parse");
                base
            }
        };
        return Ok(Principal::Key {
            id: key.id,
            scopes: key
                .scopes
                .iter()
                .filter_map(|s| s.parse::<Scope>().ok())
                .collect(),
            limits,
        });
    }
    match &state.access.admin {
        AdminAccess::Token(expected) if same_secret(token, expected) => Ok(Principal::Bootstrap),
        _ => Err(unauthorized(
            "unknown bearer token: send an API key (na_…), or the bootstrap ADMIN_TOKEN",
        )),
    }
}

/// A NIP-98 caller: the event checked against this very request (its body hashed when it
/// has one); its id goes with the request, for [`require`] to accept once.
async fn nip98_principal(
    state: &AppState,
    token: String,
    request: Request,
) -> Result<(Principal, Request), ApiError> {
    let Some(base) = &state.access.public_url else {
        return Err(unauthorized(
            "NIP-98 is not accepted here (the server has no NA_PUBLIC_URL); use an API key",
        ));
    };
    let url = format!(
        "{base}{}",
        request.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let method = request.method().as_str().to_owned();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, crate::guards::MAX_JSON_BODY_BYTES)
        .await
        .map_err(|_| ApiError::Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            detail: format!(
                "a NIP-98 request's body is at most {} bytes",
                crate::guards::MAX_JSON_BODY_BYTES
            ),
        })?;
    let auth = nip98::verify(
        &token,
        &Expected {
            url: &url,
            method: &method,
            body: Some(&body),
            now: Utc::now().timestamp(),
        },
    )
    .map_err(|e| unauthorized(e.to_string()))?;
    let mut request = Request::from_parts(parts, Body::from(body));
    request
        .extensions_mut()
        .insert(Signed(auth.event_id.to_bytes()));
    Ok((Principal::User(auth.pubkey), request))
}

/// A NIP-98 request's event id, checked but not yet recorded: [`require`] records it in
/// the statement that takes the caller's token (one round trip for both), and refuses it
/// when it was seen before.
#[derive(Debug, Clone, Copy)]
struct Signed([u8; 32]);

fn replayed() -> ApiError {
    unauthorized("this NIP-98 event was used before: sign a new one for every request")
}

/// The layer on a sub-router whose routes are all of `class` and cost `rate`: the caller
/// must be allowed the class, for the pubkey in the path where the class is about one, and
/// have a request left in its bucket for `rate` (then the answer says how many remain).
pub(crate) async fn require(
    state: AppState,
    (class, rate): (Class, RateClass),
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous);
    // Only a class about one pubkey needs it (the handler checks it again for the others).
    let pubkey = params
        .ok()
        .filter(|_| matches!(class, Class::Personal | Class::Backfill))
        .and_then(|p| {
            p.iter()
                .find(|(name, _)| *name == "pubkey")
                .map(|(_, v)| v.to_owned())
        });
    let subject: Option<PublicKey> = pubkey.as_deref().map(parse_pubkey).transpose()?;
    na_auth::decide(&principal, class, subject.as_ref())?;
    let caller = Caller {
        principal,
        ip: client_ip(&request),
    };
    let signed = request.extensions().get::<Signed>().map(|s| &s.0);
    let spent = take(&state, &caller, rate, signed).await?;
    let mut request = request;
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if let Some((per_minute, taken)) = spent {
        rate_headers(
            response.headers_mut(),
            per_minute,
            taken.remaining,
            taken.reset_secs,
        );
    }
    Ok(response)
}

/// Who a request is from, as the access layer found them (in the request's extensions
/// from `require` on).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) principal: Principal,
    pub(crate) ip: String,
}

/// One request from `caller`'s bucket for `rate`: the limit and what is left, `None` when
/// the caller is not limited.
///
/// # Errors
/// Over the limit: a 429 saying it; database errors.
pub(crate) async fn spend(
    state: &AppState,
    caller: &Caller,
    rate: RateClass,
) -> Result<Option<(u32, na_storage::access::Taken)>, ApiError> {
    take(state, caller, rate, None).await
}

/// [`spend`], recording the request's NIP-98 event id (`signed`) in the same statement.
///
/// # Errors
/// As [`spend`]; a replayed NIP-98 event: 401.
async fn take(
    state: &AppState,
    caller: &Caller,
    rate: RateClass,
    signed: Option<&[u8; 32]>,
) -> Result<Option<(u32, na_storage::access::Taken)>, ApiError> {
    let Some((bucket, per_minute)) = state
        .access
        .rate
        .bucket(&caller.principal, &caller.ip, rate)
    else {
        // Not limited (the operator, the open local stack); a NIP-98 event still counts once.
        if let Some(id) = signed
            && !state.db.first_use_of_nip98(id).await?
        {
            return Err(replayed());
        }
        return Ok(None);
    };
    let taken = if per_minute == 0 {
        None
    } else {
        let interval_ms = 60_000.0 / f64::from(per_minute);
        Some(
            state
                .db
                .take_token(&bucket, interval_ms, per_minute, signed)
                .await?
                .ok_or_else(replayed)?,
        )
    };
    match taken {
        Some(taken) if taken.allowed => Ok(Some((per_minute, taken))),
        _ => {
            na_telemetry::metrics::rate_limited(rate.as_str());
            Err(ApiError::RateLimited {
                detail: format!(
                    "over this caller's limit of {per_minute} {rate} requests a minute{}",
                    if caller.principal == Principal::Anonymous {
                        "; a signed-in user (NIP-98) or an API key gets more"
                    } else {
                        ""
                    }
                ),
                limit: per_minute,
                retry_after_secs: taken.map_or(60.0, |t| t.retry_after_secs),
                reset_secs: taken.map_or(60.0, |t| t.reset_secs),
            })
        }
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds), as the IETF
/// draft (draft-ietf-httpapi-ratelimit-headers) names them.
pub(crate) fn rate_headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_secs: f64) {
    let reset = reset_secs.ceil().max(0.0) as u64;
    for (name, value) in [
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

/// The caller's address: API Gateway's `sourceIp` on Lambda, the peer on the local stack.
fn client_ip(request: &Request) -> String {
    use lambda_http::request::RequestContext;
    let from_gateway = match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(c)) => c.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.identity.source_ip.clone(),
        _ => None,
    };
    from_gateway
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Compares two secrets in time that depends on neither: both are hashed first, so
/// neither their contents nor their lengths show in how long the comparison takes.
fn same_secret(given: &str, expected: &str) -> bool {
    api_key::same_hash(&Sha256::digest(given).into(), &Sha256::digest(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole_and_public_urls_are_checked() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
        assert!(!same_secret("s3cret!", "s3cret"));
        assert_eq!(
            public_url("https://api.example/").as_deref(),
            Ok("https://api.example")
        );
        assert_eq!(
            public_url("http://127.0.0.1:8080").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
        for bad in ["api.example", "ftp://x", "https://x/?a=1", "https://x/#f"] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }
}
