//! Bulk import: a file of events, one JSON object per line (as `strfry export` and other
//! tools write relay dumps), through the same verification and normalization as relay
//! ingest. The file is recorded as a source of its own (`file://<path>` among the relays,
//! with its counters per outcome in `/status`), and how far it has been read is committed
//! with each batch, so an interrupted import resumes at the first line not stored and
//! counts nothing twice.

use std::path::Path;
use std::time::Instant;

use na_storage::{Db, ImportProgress, IngestBatch};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tracing::info;

use crate::prepare::check_events;
use crate::{Error, Result};

/// What an import did, by outcome; `resumed_at_line` is where this run started.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub source: String,
    pub resumed_at_line: u64,
    pub lines: u64,
    pub bytes: u64,
    pub accepted: u64,
    pub duplicate: u64,
    pub bad_id: u64,
    pub bad_signature: u64,
    pub future: u64,
    pub malformed: u64,
    pub seconds: f64,
}

impl ImportReport {
    fn count(&mut self, outcome: &str, n: u64) {
        match outcome {
            "accepted" => self.accepted += n,
            "duplicate" => self.duplicate += n,
            "bad_id" => self.bad_id += n,
            "bad_signature" => self.bad_signature += n,
            "future" => self.future += n,
            _ => self.malformed += n,
        }
    }
}

/// Imports `path`, `batch_size` lines per transaction, calling `progress` after each
/// batch. With `lnurl`, valid zaps get NIP-57's LNURL verdict as in live ingest.
///
/// # Errors
/// The file cannot be opened or read; a database error (what was committed stays, and the
/// next import resumes after it).
pub async fn import_file(
    db: &Db,
    path: &Path,
    batch_size: usize,
    lnurl: Option<&na_lnurl::CachedResolver>,
    mut progress: impl FnMut(&ImportReport),
) -> Result<ImportReport> {
    let started = Instant::now();
    let canonical = tokio::fs::canonicalize(path)
        .await
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let source = format!("file://{}", canonical.display());
    let relay_id = db.relay_id(&source).await?;
    let mut file = tokio::fs::File::open(&canonical)
        .await
        .map_err(|e| Error::Config(format!("{}: {e}", canonical.display())))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| Error::Config(format!("{}: {e}", canonical.display())))?
        .len();
    // A file shorter than where the last import stopped is another file: from the start.
    let (mut offset, mut lines) = match db.import_progress(&source).await? {
        Some((o, l)) if (o as u64) <= size => (o as u64, l as u64),
        _ => (0, 0),
    };
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| Error::Config(format!("{}: {e}", canonical.display())))?;
    let mut report = ImportReport {
        source: source.clone(),
        resumed_at_line: lines,
        ..Default::default()
    };
    info!(%source, from_line = lines, from_byte = offset, "import started");
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        let mut events = Vec::with_capacity(batch_size);
        let mut read_to_end = false;
        while events.len() < batch_size {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .await
                .map_err(|e| Error::Config(format!("{}: {e}", canonical.display())))?;
            if n == 0 {
                read_to_end = true;
                break;
            }
            offset += n as u64;
            lines += 1;
            let json = line.trim();
            if !json.is_empty() {
                events.push(json.to_owned());
            }
        }
        let read = events.len() as u64;
        let now = chrono::Utc::now().timestamp();
        let label = source.clone();
        let (mut stored, rejected) =
            tokio::task::spawn_blocking(move || check_events(events, &label, relay_id, now))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(resolver) = lnurl {
            crate::zap_check::annotate(resolver, db, &mut stored).await;
        }
        for t in &rejected {
            report.count(t.outcome, t.count as u64);
        }
        let batch = IngestBatch {
            events: stored,
            rejected,
            import: Some(ImportProgress {
                source: source.clone(),
                offset: offset as i64,
                lines: lines as i64,
                finished: read_to_end,
            }),
            ..Default::default()
        };
        let outcome = db.store_batch(&batch).await?;
        report.count("accepted", outcome.inserted.len() as u64);
        report.count("duplicate", outcome.duplicates);
        report.lines = lines - report.resumed_at_line;
        report.bytes = offset;
        report.seconds = started.elapsed().as_secs_f64();
        if read > 0 || read_to_end {
            progress(&report);
        }
        if read_to_end {
            break;
        }
    }
    info!(?report, "import finished");
    Ok(report)
}
