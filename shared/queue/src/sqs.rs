//! Amazon SQS as the job queue (production), through the official SDK. Tests run it against
//! `moto_server` on loopback, which speaks the same protocol.

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
    pub aws: na_aws::AwsEnv,
    /// `None`: the region's AWS endpoint; else an SQS-compatible server (`moto_server`).
    pub endpoint: Option<String>,
}

impl SqsSettings {
    /// The function's region and credentials ([`na_aws::AwsEnv`]); `NA_SQS_ENDPOINT` for
    /// an SQS-compatible server.
    ///
    /// # Errors
    /// [`Error::Backend`] when the credentials are missing.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Ok(SqsSettings {
            aws: na_aws::AwsEnv::from_lookup(var).map_err(|e| Error::Backend(e.to_string()))?,
            endpoint: var("NA_SQS_ENDPOINT").filter(|e| !e.is_empty()),
        })
    }

    /// An SQS client for these settings.
    pub fn client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws.sdk_config(self.endpoint.as_deref()))
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
