//! The database's user and password from an AWS Secrets Manager secret, read once at a
//! cold start: `DATABASE_URL` names the server (host, port, database, `sslmode`: an RDS
//! Proxy endpoint or the instance), the secret who connects.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;

use crate::{AwsEnv, Error};

/// `DATABASE_SECRET_ARN`: the secret, and how to reach Secrets Manager.
#[derive(Debug, Clone)]
pub struct DatabaseSecret {
    pub arn: String,
    pub aws: AwsEnv,
    /// `None`: the region's AWS endpoint; else a compatible server (`NA_SECRETS_ENDPOINT`,
    /// `moto_server` in the tests).
    pub endpoint: Option<String>,
}

/// The fields of the secret RDS and Secrets Manager's rotation write (others are ignored).
#[derive(Deserialize)]
struct Stored {
    username: String,
    password: String,
}

impl DatabaseSecret {
    /// `None` when `DATABASE_SECRET_ARN` is not set (the credentials are in `DATABASE_URL`,
    /// as on the local stack).
    ///
    /// # Errors
    /// The function's AWS credentials are missing.
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let Some(arn) = var("DATABASE_SECRET_ARN").filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(DatabaseSecret {
            arn,
            aws: AwsEnv::from_lookup(var)?,
            endpoint: var("NA_SECRETS_ENDPOINT").filter(|e| !e.is_empty()),
        }))
    }

    /// `url` with the secret's user and password in it.
    ///
    /// # Errors
    /// The secret cannot be read or is not `{"username", "password", …}`; `url` is not a
    /// URL.
    pub async fn apply(&self, url: &str) -> Result<String, Error> {
        let failed = |why: String| Error::Secret {
            arn: self.arn.clone(),
            why,
        };
        let client =
            aws_sdk_secretsmanager::Client::new(&self.aws.sdk_config(self.endpoint.as_deref()));
        let answer = client
            .get_secret_value()
            .secret_id(&self.arn)
            .send()
            .await
            .map_err(|e| failed(format!("cannot read it: {}", DisplayErrorContext(e))))?;
        let text = answer
            .secret_string()
            .ok_or_else(|| failed("it holds no SecretString".into()))?;
        let stored: Stored = serde_json::from_str(text).map_err(|e| {
            failed(format!(
                "not the JSON of a database secret ({{\"username\", \"password\", …}}): {}",
                e.classify_name()
            ))
        })?;
        with_credentials(url, &stored.username, &stored.password)
    }
}

/// Where the database is and who connects: `DATABASE_URL`, with `DATABASE_SECRET_ARN`'s
/// user and password when it is set. Read from the environment at start; the secret is
/// fetched by [`Database::url`], once, at a cold start.
#[derive(Debug, Clone)]
pub struct Database {
    url: String,
    secret: Option<DatabaseSecret>,
}

impl Database {
    /// `url` (`DATABASE_URL`, or its default) and the secret, if any.
    ///
    /// # Errors
    /// As [`DatabaseSecret::from_lookup`].
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>, url: String) -> Result<Self, Error> {
        Ok(Database {
            url,
            secret: DatabaseSecret::from_lookup(var)?,
        })
    }

    /// The URL to connect with.
    ///
    /// # Errors
    /// As [`DatabaseSecret::apply`].
    pub async fn url(&self) -> Result<String, Error> {
        match &self.secret {
            Some(secret) => secret.apply(&self.url).await,
            None => Ok(self.url.clone()),
        }
    }
}

/// `url` with `user` and `password` in place of any it had (percent-encoded).
fn with_credentials(url: &str, user: &str, password: &str) -> Result<String, Error> {
    let mut parsed = url::Url::parse(url).map_err(|e| Error::Url(e.to_string()))?;
    if parsed.host().is_none() {
        return Err(Error::Url("names no host".into()));
    }
    parsed
        .set_username(user)
        .and_then(|()| parsed.set_password(Some(password)))
        .map_err(|()| Error::Url("cannot hold a user and password".into()))?;
    Ok(parsed.into())
}

/// What kind of mistake a secret's JSON is, without quoting it (it holds a password).
trait Classify {
    fn classify_name(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
            serde_json::error::Category::Data => "a field is missing or not a string",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn credentials_replace_any_in_the_url_and_are_encoded() {
        let url = with_credentials(
            "postgres://old:pw@proxy.example:5432/nostr_analytics?sslmode=verify-full",
            "na_app",
            "p@ss/w:rd?",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://na_app:p%40ss%2Fw%3Ard%3F@proxy.example:5432/nostr_analytics?sslmode=verify-full"
        );
        assert!(with_credentials("not a url", "u", "p").is_err());
    }
}
