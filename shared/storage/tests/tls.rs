//! TLS to a real PostgreSQL: a second local server, started here with TLS only (a plain
//! connection is refused by its pg_hba.conf), whose certificate a CA made here signed for
//! `localhost`. Every `sslmode` is tried against it as `DATABASE_URL` would give it.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use na_storage::Db;
use na_test_support::{PgServer, PgSetup};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA: its certificate (PEM) and what it signs with.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

/// A server of the test's own, TLS only (a plain connection is refused by its
/// pg_hba.conf), its certificate signed by `ca` for `localhost`.
fn start_server(ca: &Ca) -> PgServer {
    let server_key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&server_key, &ca.cert, &ca.key).unwrap();
    let setup = PgSetup {
        files: vec![
            ("server.crt".into(), cert.pem(), 0o644),
            ("server.key".into(), server_key.serialize_pem(), 0o600),
            (
                "pg_hba.conf".into(),
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostnossl all all 127.0.0.1/32 reject\n"
                    .into(),
                0o600,
            ),
        ],
        settings: vec![("ssl".into(), "on".into())],
    };
    PgServer::start("tls", &setup)
}

/// Whether the connection `db` hands out is encrypted, as the server sees it.
async fn encrypted(db: &Db) -> bool {
    let conn = db.conn().await.unwrap();
    conn.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn every_sslmode_against_a_server_that_takes_tls_only() {
    let ca_ = ca("nostr-analytics test CA");
    let other = ca("another CA");
    let server = start_server(&ca_);
    let write_pem = |name: &str, ca: &Ca| {
        let path = server.dir().join(name);
        std::fs::write(&path, ca.cert.pem()).unwrap();
        path.display().to_string()
    };
    let (ours, theirs) = (write_pem("ca.pem", &ca_), write_pem("other.pem", &other));
    let url = |host: &str, params: &str| {
        format!(
            "postgres://postgres@{host}:{}/na_tls?{params}",
            server.port()
        )
    };

    // Encrypted and accepted: the database is created and migrated over TLS.
    for (host, params) in [
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", String::new()),
        ("127.0.0.1", "sslmode=prefer".to_owned()),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ours}"),
        ),
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ours}")),
        ("127.0.0.1", format!("sslmode=require&sslrootcert={ours}")),
    ] {
        let db = Db::connect(&url(host, &params), 2)
            .await
            .unwrap_or_else(|e| panic!("{host}?{params}: {e}"));
        assert!(encrypted(&db).await, "{host}?{params}");
    }

    // Refused, each saying why.
    for (host, params, says) in [
        ("127.0.0.1", "sslmode=disable".to_owned(), "no encryption"),
        // The certificate is for localhost, not for the address.
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ours}"),
            "certificate",
        ),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={theirs}"),
            "certificate",
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={theirs}"),
            "certificate",
        ),
        // With roots, require checks the chain, as libpq's does.
        (
            "127.0.0.1",
            format!("sslmode=require&sslrootcert={theirs}"),
            "certificate",
        ),
        // The system's roots do not know the test's CA.
        ("localhost", "sslmode=verify-full".to_owned(), "certificate"),
    ] {
        let err = Db::connect(&url(host, &params), 2)
            .await
            .err()
            .unwrap_or_else(|| panic!("{host}?{params} was accepted"));
        let text = err.to_string();
        assert!(text.contains(says), "{host}?{params}: {text}");
        println!("{host}?{params}: refused: {text}");
    }
}
