//! LNURL-pay over HTTPS with reqwest, guarded against server-side request forgery: every
//! address a host resolves to must be public, IP literals too, and redirects are checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use serde::Deserialize;

use crate::{Lookup, NostrPubkeyResolver};

/// How [`HttpResolver`] fetches.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole request, connect to last byte.
    pub timeout: Duration,
    /// Longest body read; a pay request is well under a kilobyte.
    pub max_body: usize,
    /// Allow loopback and private addresses and plain HTTP (tests and local development).
    pub allow_private: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(5),
            max_body: 64 * 1024,
            allow_private: false,
        }
    }
}

/// Fetches LNURL-pay endpoints.
#[derive(Debug, Clone)]
pub struct HttpResolver {
    client: reqwest::Client,
    options: HttpOptions,
}

/// LUD-06 pay request (or LUD-06 error), the fields NIP-57 reads.
#[derive(Deserialize)]
struct PayResponse {
    #[serde(rename = "allowsNostr")]
    allows_nostr: Option<bool>,
    #[serde(rename = "nostrPubkey")]
    nostr_pubkey: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    tag: Option<String>,
}

impl HttpResolver {
    /// # Errors
    /// When the TLS backend cannot be set up.
    pub fn new(options: HttpOptions) -> Result<Self, reqwest::Error> {
        let allow_private = options.allow_private;
        let mut builder = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("nostr-analytics/", env!("CARGO_PKG_VERSION")))
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 {
                    attempt.error("more than 3 redirects")
                } else if !url_allowed(attempt.url(), allow_private) {
                    attempt.error("redirect to a private address or plain HTTP")
                } else {
                    attempt.follow()
                }
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(HttpResolver {
            client: builder.build()?,
            options,
        })
    }

    async fn fetch(&self, pay_url: &str) -> Lookup {
        let url = match url::Url::parse(pay_url) {
            Ok(u) => u,
            Err(e) => return Lookup::Failed(format!("not a URL: {e}")),
        };
        if !url_allowed(&url, self.options.allow_private) {
            return Lookup::Failed("private address or plain HTTP refused".into());
        }
        let mut response = match self.client.get(url).send().await {
            Ok(r) => r,
            Err(e) => return Lookup::Failed(describe(e)),
        };
        if !response.status().is_success() {
            return Lookup::Failed(format!("HTTP {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > self.options.max_body {
                        return Lookup::Failed(format!(
                            "body larger than {} bytes",
                            self.options.max_body
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Lookup::Failed(describe(e)),
            }
        }
        read_pay_response(&body)
    }
}

impl NostrPubkeyResolver for HttpResolver {
    fn lookup<'a>(&'a self, pay_url: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(self.fetch(pay_url))
    }
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        // The URL is the cache key already; keep it out of the stored reason.
        e.without_url().to_string()
    }
}

fn read_pay_response(body: &[u8]) -> Lookup {
    let pay: PayResponse = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return Lookup::Failed(format!("not a pay request: {e}")),
    };
    if pay.status.as_deref() == Some("ERROR") {
        return Lookup::Failed(format!(
            "endpoint error: {}",
            pay.reason.unwrap_or_default()
        ));
    }
    if pay.tag.as_deref().is_some_and(|t| t != "payRequest") {
        return Lookup::Failed("not a payRequest".into());
    }
    match (pay.allows_nostr, pay.nostr_pubkey.as_deref()) {
        (Some(true), Some(pk)) => {
            na_domain::event::parse_hex32(pk).map_or(Lookup::NoNostr, Lookup::NostrPubkey)
        }
        _ => Lookup::NoNostr,
    }
}

/// HTTPS to a host that is not an IP literal of a private network (or, when allowed,
/// anything); plain HTTP only to onion services.
fn url_allowed(url: &url::Url, allow_private: bool) -> bool {
    if allow_private {
        return matches!(url.scheme(), "https" | "http");
    }
    let onion = url.host_str().is_some_and(|h| h.ends_with(".onion"));
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && onion);
    let host_ok = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => !d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    scheme_ok && host_ok
}

/// Not loopback, private, link-local (the cloud metadata service), shared (CGNAT),
/// unspecified, broadcast, documentation or unique-local.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// A DNS resolver that drops private addresses, so a public name cannot lead inside.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_and_plain_http_are_refused() {
        let allowed = |u: &str| url_allowed(&url::Url::parse(u).unwrap(), false);
        assert!(allowed("https://pay.example.com/.well-known/lnurlp/a"));
        assert!(allowed("http://abcdef.onion/.well-known/lnurlp/a"));
        for refused in [
            "http://pay.example.com/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:192.168.0.1]/x",
            "https://100.64.0.1/x",
            "ftp://pay.example.com/x",
        ] {
            assert!(!allowed(refused), "{refused}");
        }
    }

    #[test]
    fn pay_responses() {
        let pk = "ab".repeat(32);
        let ok = format!(r#"{{"tag":"payRequest","allowsNostr":true,"nostrPubkey":"{pk}"}}"#);
        assert_eq!(
            read_pay_response(ok.as_bytes()),
            Lookup::NostrPubkey([0xab; 32])
        );
        let off = format!(r#"{{"tag":"payRequest","allowsNostr":false,"nostrPubkey":"{pk}"}}"#);
        assert_eq!(read_pay_response(off.as_bytes()), Lookup::NoNostr);
        assert_eq!(
            read_pay_response(br#"{"tag":"payRequest","allowsNostr":true,"nostrPubkey":"nope"}"#),
            Lookup::NoNostr
        );
        assert!(matches!(
            read_pay_response(br#"{"status":"ERROR","reason":"no such user"}"#),
            Lookup::Failed(r) if r.contains("no such user")
        ));
        assert!(matches!(read_pay_response(b"<html>"), Lookup::Failed(_)));
        assert!(matches!(
            read_pay_response(br#"{"tag":"withdrawRequest"}"#),
            Lookup::Failed(_)
        ));
    }
}
