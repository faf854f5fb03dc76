//! Running the `nostr-analytics` binary as the README does, for the tests beside this.
#![allow(dead_code, reason = "each test file uses its own part")]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The running stack (killed when dropped), and what it has printed so far.
pub struct Stack {
    child: Child,
    printed: Arc<Mutex<Vec<String>>>,
}

impl Stack {
    /// Runs `command` with its stdout read line by line.
    pub fn spawn(mut command: Command) -> Stack {
        let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
        let printed = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let lines = Arc::clone(&printed);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Stack { child, printed }
    }

    /// The value of the banner line that starts with `label` (`"  analytics"`), once printed.
    pub async fn banner(&self, label: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self
                .printed
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.trim_start().starts_with(label))
            {
                return line.trim_start()[label.len()..].trim().to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the stack never printed {label:?}: {:?}",
                self.printed.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn get_json(url: &str) -> Option<serde_json::Value> {
    let addr = url.trim_start_matches("http://");
    let (host, path) = addr.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await.ok()?;
    let body = buf.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}

/// Starts the stack on `database_url` and waits until it has ingested its demo data from
/// its own demo relay (a relay not among `before`: a restart's listens on another port).
pub async fn start_until_ingested(
    database_url: &str,
    extra_env: &[(&str, &str)],
    before: &[String],
) -> (Stack, String, String) {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_nostr-analytics"));
    command
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--run-for",
            "1800",
        ])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let stack = Stack::spawn(command);
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the stack did not ingest its demo data"
        );
        let status = get_json(&format!("{base}/api/v2/analytics/status")).await;
        let delivered = |r: &serde_json::Value| {
            r["counters"]["accepted"].as_u64().unwrap_or(0)
                + r["counters"]["duplicate"].as_u64().unwrap_or(0)
        };
        let ours = status.as_ref().and_then(|s| {
            s["relays"].as_array()?.iter().find(|r| {
                let url = r["url"].as_str().unwrap_or_default();
                !before.iter().any(|b| b == url) && !r["watermark"].is_null() && delivered(r) > 3000
            })
        });
        if let Some(relay) = ours {
            let url = relay["url"].as_str().unwrap().to_owned();
            return (stack, base, url);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
