//! TLS to a real PostgreSQL: a second local server, started here with TLS only (a plain
//! connection is refused by its pg_hba.conf), whose certificate a CA made here signed for
//! `localhost`. Every `sslmode` is tried against it as `DATABASE_URL` would give it.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use na_storage::Db;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

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

/// The id of the `postgres` user, which the server must run as.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(out.status.success(), "no postgres user to run a server as");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (id("-u"), id("-g"))
}

/// A PostgreSQL server of its own in `dir`, TLS only, on `port`; stopped when dropped.
struct TlsServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // A fast shutdown: the postmaster ends its backends and exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(ca: &Ca) -> TlsServer {
    let (uid, gid) = postgres_ids();
    let dir = std::env::temp_dir().join(format!("na-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    chown(&dir);
    let data = dir.join("data");
    let as_postgres = |program: &str| {
        let mut c = Command::new(Path::new(PG_BIN).join(program));
        c.uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let out = as_postgres("initdb")
        .args([
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PG_BIN}/initdb: {e}"));
    assert!(
        out.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server_key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&server_key, &ca.cert, &ca.key).unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let path = data.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        chown(&path);
    };
    write("server.crt", &cert.pem(), 0o644);
    write("server.key", &server_key.serialize_pem(), 0o600);
    write(
        "pg_hba.conf",
        "local all all trust\n\
         hostssl all all 127.0.0.1/32 trust\n\
         hostnossl all all 127.0.0.1/32 reject\n",
        0o600,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = as_postgres("postgres")
        .args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
        .args([
            "-k",
            dir.to_str().unwrap(),
            "-c",
            "listen_addresses=127.0.0.1",
        ])
        .args([
            "-c",
            "ssl=on",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=20",
        ])
        .spawn()
        .unwrap();
    let server = TlsServer { child, dir, port };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the TLS server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
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
        let path = server.dir.join(name);
        std::fs::write(&path, ca.cert.pem()).unwrap();
        path.display().to_string()
    };
    let (ours, theirs) = (write_pem("ca.pem", &ca_), write_pem("other.pem", &other));
    let url = |host: &str, params: &str| {
        format!("postgres://postgres@{host}:{}/na_tls?{params}", server.port)
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
