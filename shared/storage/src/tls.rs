//! TLS to PostgreSQL, with `sslmode` and `sslrootcert` read from the database URL as libpq
//! reads them, so a URL that works with `psql` works here:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (when absent, as libpq) | when the server offers it | not checked |
//! | `require` | always | not checked; with `sslrootcert`, its chain (as `verify-ca`) |
//! | `verify-ca` | always | its chain, to `sslrootcert` |
//! | `verify-full` | always | its chain and the host name it is for |
//!
//! `sslrootcert` is a PEM file of CA certificates (the RDS bundle, say) or `system`, the
//! operating system's roots, which are also what `verify-ca` and `verify-full` use without
//! one (where libpq would look for `~/.postgresql/root.crt`).

use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::Config;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Error, Result};

/// How a connection is secured: libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Result<Self> {
        match s {
            "disable" => Ok(TlsMode::Disable),
            // libpq's `allow` tries without TLS first; TLS first costs nothing more here.
            "allow" | "prefer" => Ok(TlsMode::Prefer),
            "require" => Ok(TlsMode::Require),
            "verify-ca" => Ok(TlsMode::VerifyCa),
            "verify-full" => Ok(TlsMode::VerifyFull),
            other => Err(Error::BadUrl(format!(
                "sslmode={other}: not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))),
        }
    }
}

/// The connection settings of `url` and the TLS connector they ask for.
///
/// # Errors
/// [`Error::BadUrl`]: a URL tokio-postgres does not take, an unknown `sslmode`, an
/// `sslrootcert` that cannot be read or holds no certificate.
pub fn connection(url: &str) -> Result<(Config, MakeRustlsConnect, TlsMode)> {
    let (rest, sslmode, rootcert) = take_tls_params(url)?;
    let mut config = Config::from_str(&rest).map_err(|e| Error::BadUrl(e.to_string()))?;
    let mode = sslmode
        .as_deref()
        .map_or(Ok(TlsMode::Prefer), TlsMode::parse)?;
    config.ssl_mode(match mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = || roots(rootcert.as_deref());
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, &rootcert) {
        (TlsMode::Disable | TlsMode::Prefer, _) | (TlsMode::Require, None) => {
            Arc::new(Unchecked(provider.signature_verification_algorithms))
        }
        (TlsMode::Require | TlsMode::VerifyCa, _) => {
            Arc::new(ChainOnly(webpki(roots()?, &provider)?))
        }
        (TlsMode::VerifyFull, _) => webpki(roots()?, &provider)?,
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::BadUrl(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls), mode))
}

/// `url` without `sslmode` and `sslrootcert` (which tokio-postgres does not take, or not
/// all of), and their values. Both URL (`postgres://…?sslmode=…`) and `key=value` forms.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let (mut mode, mut root) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut parsed = url::Url::parse(url).map_err(|e| Error::BadUrl(e.to_string()))?;
        let mut kept = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "sslmode" => mode = Some(v.into_owned()),
                "sslrootcert" => root = Some(v.into_owned()),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok((parsed.to_string(), mode, root));
    }
    let kept: Vec<&str> = url
        .split_whitespace()
        .filter(|part| match part.split_once('=') {
            Some(("sslmode", v)) => {
                mode = Some(v.trim_matches('\'').to_owned());
                false
            }
            Some(("sslrootcert", v)) => {
                root = Some(v.trim_matches('\'').to_owned());
                false
            }
            _ => true,
        })
        .collect();
    Ok((kept.join(" "), mode, root))
}

/// The CA certificates of `sslrootcert` (a PEM file), or the system's (`system`, absent).
fn roots(rootcert: Option<&str>) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match rootcert {
        None | Some("system") => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .map_err(|e| Error::BadUrl(format!("sslrootcert={path}: {e}")))?;
            store.add_parsable_certificates(certs);
        }
    }
    if store.is_empty() {
        return Err(Error::BadUrl(format!(
            "sslrootcert={}: no CA certificate found",
            rootcert.unwrap_or("system")
        )));
    }
    Ok(store)
}

fn webpki(
    roots: RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| Error::BadUrl(format!("TLS roots: {e}")))
}

/// `prefer`, and `require` without roots: encrypted, the server not authenticated (libpq's
/// meaning). The handshake's signatures are still checked.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the certificate's chain to a root, whatever host name it is for.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name: a name error means the chain was good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_both_url_forms() {
        let (rest, mode, root) = take_tls_params(
            "postgres://u:p@db.example:5432/na?sslmode=verify-full&application_name=x&sslrootcert=%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@db.example:5432/na?application_name=x");
        assert_eq!(
            (mode.as_deref(), root.as_deref()),
            (Some("verify-full"), Some("/ca.pem"))
        );
        let (rest, mode, root) = take_tls_params("postgres://db/na?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref(), root),
            ("postgres://db/na", Some("require"), None)
        );
        let (rest, mode, _) = take_tls_params("host=db dbname=na sslmode='verify-ca'").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=db dbname=na", Some("verify-ca"))
        );
        let (rest, mode, _) = take_tls_params("postgres://db/na").unwrap();
        assert_eq!((rest.as_str(), mode), ("postgres://db/na", None));
    }

    #[test]
    fn modes_are_libpqs_and_bad_ones_are_named() {
        for (url, mode) in [
            ("postgres://db/na", TlsMode::Prefer),
            ("postgres://db/na?sslmode=disable", TlsMode::Disable),
            ("postgres://db/na?sslmode=allow", TlsMode::Prefer),
            ("postgres://db/na?sslmode=require", TlsMode::Require),
        ] {
            assert_eq!(connection(url).unwrap().2, mode, "{url}");
        }
        let err = connection("postgres://db/na?sslmode=verify")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("sslmode=verify: not one of"), "{err}");
        let err = connection("postgres://db/na?sslmode=verify-full&sslrootcert=/nonexistent.pem")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("sslrootcert=/nonexistent.pem"), "{err}");
    }
}
