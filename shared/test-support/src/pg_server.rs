//! A PostgreSQL server of a test's own, beside the machine's: initialised in a temporary
//! directory (or copied from another server by `pg_basebackup`, as a streaming replica),
//! run as the `postgres` user on a free loopback port, stopped and removed when dropped.
//! The same installation as the machine's server, so its extensions (`hll`) are there.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running server.
#[derive(Debug)]
pub struct PgServer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// Files written into the data directory before the server starts (`pg_hba.conf`,
/// certificates), and settings it starts with.
#[derive(Debug, Default, Clone)]
pub struct PgSetup {
    /// (name, contents, mode).
    pub files: Vec<(String, String, u32)>,
    /// `-c name=value` settings.
    pub settings: Vec<(String, String)>,
}

/// The `postgres` user's ids, which the server must run as.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run id: {e}"));
        assert!(out.status.success(), "no postgres user to run a server as");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("id -{flag} postgres: {e}"))
    };
    (id("-u"), id("-g"))
}

fn as_postgres(program: &str) -> Command {
    let (uid, gid) = postgres_ids();
    let mut c = Command::new(Path::new(PG_BIN).join(program));
    c.uid(uid)
        .gid(gid)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run(mut command: Command, what: &str) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what} ({PG_BIN}): {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new directory for `name`, owned by `postgres`.
fn directory(name: &str) -> PathBuf {
    let (uid, gid) = postgres_ids();
    let dir = std::env::temp_dir().join(format!("na-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", dir.display()));
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

impl PgServer {
    /// A new cluster (`initdb`, trust authentication, user `postgres`) named `name`,
    /// with `setup`, started.
    ///
    /// # Panics
    /// When the server cannot be made or does not start: the test fails saying why.
    pub fn start(name: &str, setup: &PgSetup) -> PgServer {
        let dir = directory(name);
        let data = dir.join("data");
        let mut initdb = as_postgres("initdb");
        initdb.args(["-D", &data.to_string_lossy()]).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        run(initdb, "initdb");
        Self::launch(dir, setup)
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`: it follows the primary's WAL
    /// and answers read-only queries), started.
    ///
    /// # Panics
    /// As [`PgServer::start`].
    pub fn replica_of(primary: &PgServer, name: &str) -> PgServer {
        let dir = directory(name);
        let mut backup = as_postgres("pg_basebackup");
        backup.args([
            "-h",
            "127.0.0.1",
            "-p",
            &primary.port.to_string(),
            "-U",
            "postgres",
            "-D",
            &dir.join("data").to_string_lossy(),
            "-R",
            "-X",
            "stream",
            // Not a spread checkpoint: the copy starts at once, not minutes later.
            "--checkpoint=fast",
            "--no-sync",
        ]);
        run(backup, "pg_basebackup");
        Self::launch(dir, &PgSetup::default())
    }

    fn launch(dir: PathBuf, setup: &PgSetup) -> PgServer {
        let (uid, gid) = postgres_ids();
        let data = dir.join("data");
        for (name, text, mode) in &setup.files {
            use std::os::unix::fs::PermissionsExt;
            let path = data.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let port = free_port();
        let mut postgres = as_postgres("postgres");
        postgres.args(["-D", &data.to_string_lossy(), "-p", &port.to_string()]);
        postgres.args([
            "-k",
            &dir.to_string_lossy(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=40",
        ]);
        for (name, value) in &setup.settings {
            postgres.args(["-c", &format!("{name}={value}")]);
        }
        let child = postgres
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start postgres: {e}"));
        let server = PgServer { child, dir, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server in {} did not start",
                server.dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (the data directory is `data/` in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of `database` on it, as user `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // A fast shutdown: the postmaster ends its backends and exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
