//! Amazon SQS as the job queue (production), through the official SDK. Tests run it against
//! `moto_server` on loopback, which speaks the same protocol.

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::DisplayErrorContext;

use crate::{BoxFuture, Error, JobMessage, JobQueue, Result};

/// Sends job messages to one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// Where and as whom to reach SQS.
#[derive(Debug, Clone)]
pub struct SqsSettings {
    pub region: String,
    /// `None`: the region's AWS endpoint; else an SQS-compatible server (`moto_server`).
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl SqsSettings {
    /// What a Lambda function is given: `AWS_REGION` and the execution role's credentials
    /// in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (reading them
    /// here spares compiling the SDK's whole credential chain); `NA_SQS_ENDPOINT` for an
    /// SQS-compatible server.
    ///
    /// # Errors
    /// [`Error::Backend`] when the credentials are missing.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let missing = |name: &str| Error::Backend(format!("{name} is not set"));
        Ok(SqsSettings {
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            endpoint: var("NA_SQS_ENDPOINT"),
            access_key_id: var("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")
                .ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }

    /// An SQS client for these settings.
    pub fn client(&self) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(Credentials::new(
                self.access_key_id.clone(),
                self.secret_access_key.clone(),
                self.session_token.clone(),
                None,
                "environment",
            ));
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint);
        }
        aws_sdk_sqs::Client::from_conf(config.build())
    }
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
        }
    }

    /// The queue named by `NA_JOBS_QUEUE_URL`, or `None` when it is not set.
    ///
    /// # Errors
    /// As [`SqsSettings::from_lookup`].
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let Some(url) = var("NA_JOBS_QUEUE_URL").filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(SqsQueue::new(
            SqsSettings::from_lookup(var)?.client(),
            url,
        )))
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl JobQueue for SqsQueue {
    fn send(&self, message: JobMessage) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.client
                .send_message()
                .queue_url(&self.url)
                .message_body(message.to_body())
                .send()
                .await
                .map_err(|e| Error::Backend(DisplayErrorContext(e).to_string()))?;
            Ok(())
        })
    }
}
