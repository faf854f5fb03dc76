//! The job queue: messages that name a job row, and the [`JobQueue`] trait that SQS (in
//! production, [`SqsQueue`]) and the in-process queue (the local default) both implement.

mod sqs;

pub use sqs::{SqsQueue, SqsSettings};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

/// What a queue message asks for. The job row holds the parameters and the progress, so a
/// message is small and a redelivery finds the state of the first attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobMessage {
    /// Fetch the history of one pubkey from the relays (`jobs.params.pubkey`).
    Backfill { job_id: Uuid },
    /// Build a new plugin version's buckets (`jobs.params.plugin`, `jobs.params.version`).
    Recompute { job_id: Uuid },
    /// Answer an analytics query too costly to answer at once (`jobs.params`: the query).
    Query { job_id: Uuid },
}

impl JobMessage {
    pub fn job_id(&self) -> Uuid {
        match self {
            JobMessage::Backfill { job_id }
            | JobMessage::Recompute { job_id }
            | JobMessage::Query { job_id } => *job_id,
        }
    }

    /// Its `type`, as on the wire (`backfill`, `recompute`, `query`).
    pub fn kind(&self) -> &'static str {
        match self {
            JobMessage::Backfill { .. } => "backfill",
            JobMessage::Recompute { .. } => "recompute",
            JobMessage::Query { .. } => "query",
        }
    }

    /// The message body as sent over the wire.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// # Errors
    /// [`Error::BadMessage`] when the body is not a job message.
    pub fn from_body(body: &str) -> Result<Self> {
        serde_json::from_str(body).map_err(|e| Error::BadMessage(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("queue is closed")]
    Closed,
    #[error("not a job message: {0}")]
    BadMessage(String),
    #[error("queue backend: {0}")]
    Backend(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Somewhere to send job messages.
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    /// Enqueues a message.
    ///
    /// # Errors
    /// When the queue is closed or its backend refuses the message.
    fn send(&self, message: JobMessage) -> BoxFuture<'_, Result<()>>;
}

/// A queue that refuses every message: for a deployment that has no queue configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconfigured;

impl JobQueue for Unconfigured {
    fn send(&self, _: JobMessage) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(Error::Backend("no job queue is configured".into())) })
    }
}

/// A message as a consumer receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub message: JobMessage,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

/// The in-process queue of the local stack. Failed deliveries are sent again up to
/// `max_receives` times, like an SQS redrive policy.
#[derive(Debug, Clone)]
pub struct InProcessQueue {
    tx: mpsc::UnboundedSender<Delivery>,
}

/// The consuming end of an [`InProcessQueue`].
#[derive(Debug, Clone)]
pub struct InProcessReceiver {
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Delivery>>>,
    // Weak, so the receiver ends once every queue handle is dropped.
    tx: mpsc::WeakUnboundedSender<Delivery>,
    max_receives: u32,
}

impl InProcessQueue {
    pub fn new(max_receives: u32) -> (Self, InProcessReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let receiver = InProcessReceiver {
            rx: Arc::new(Mutex::new(rx)),
            tx: tx.downgrade(),
            max_receives,
        };
        (InProcessQueue { tx }, receiver)
    }
}

impl JobQueue for InProcessQueue {
    fn send(&self, message: JobMessage) -> BoxFuture<'_, Result<()>> {
        let sent = self
            .tx
            .send(Delivery {
                message,
                receive_count: 1,
            })
            .map_err(|_| Error::Closed);
        Box::pin(async move { sent })
    }
}

impl InProcessReceiver {
    /// The next delivery; `None` once every sender is gone.
    pub async fn recv(&self) -> Option<Delivery> {
        self.rx.lock().await.recv().await
    }

    /// Returns a failed delivery to the queue; `false` when it has used its receives
    /// (where SQS would move it to the dead-letter queue).
    pub fn retry(&self, delivery: Delivery) -> bool {
        if delivery.receive_count >= self.max_receives {
            return false;
        }
        let again = Delivery {
            receive_count: delivery.receive_count + 1,
            ..delivery
        };
        self.tx.upgrade().is_some_and(|tx| tx.send(again).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_and_redelivers_up_to_the_limit() {
        let (queue, rx) = InProcessQueue::new(2);
        let msg = JobMessage::Backfill {
            job_id: Uuid::nil(),
        };
        queue.send(msg.clone()).await.unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(
            (first.message.clone(), first.receive_count),
            (msg.clone(), 1)
        );
        assert!(rx.retry(first));
        let second = rx.recv().await.unwrap();
        assert_eq!(second.receive_count, 2);
        assert!(
            !rx.retry(second),
            "third receive goes to the dead-letter path"
        );
        drop(queue);
        assert!(
            rx.recv().await.is_none(),
            "the receiver ends with its queue"
        );
    }

    #[test]
    fn body_round_trips() {
        let msg = JobMessage::Backfill {
            job_id: Uuid::new_v4(),
        };
        assert_eq!(JobMessage::from_body(&msg.to_body()).unwrap(), msg);
        assert!(JobMessage::from_body("{\"type\":\"nope\"}").is_err());
    }
}
