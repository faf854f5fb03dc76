//! The database's credentials from Secrets Manager (`moto_server` on loopback speaks its
//! protocol): a function connects as the secret's user, and a secret it cannot use is an
//! error that names it without quoting it.
#![allow(clippy::unwrap_used, reason = "a test reports failure by panicking")]

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use na_aws::Database;

fn env<'a>(vars: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

async fn secret(moto: &na_test_support::MotoServer, name: &str, text: &str) -> String {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(moto.endpoint())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
        .create_secret()
        .name(name)
        .secret_string(text)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap()
}

fn lookup(arn: &str, moto: &na_test_support::MotoServer) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_SECRET_ARN", arn.to_owned()),
        ("NA_SECRETS_ENDPOINT", moto.endpoint()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]
}

#[tokio::test]
async fn a_function_connects_as_the_secrets_user() {
    let moto = na_test_support::MotoServer::start().await;
    let url = na_test_support::fresh_database_url().await;
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let role = format!("na_secret_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'x'"
        ))
        .await
        .unwrap();
    let arn = secret(
        &moto,
        "db",
        &format!(
            r#"{{"engine": "postgres", "username": "{role}", "password": "s3cret/@:?", "host": "ignored", "port": 5432}}"#
        ),
    )
    .await;
    let vars = lookup(&arn, &moto);
    // DATABASE_URL names the server; the secret, who connects.
    let database = Database::from_lookup(&env(&vars), url.clone()).unwrap();
    let resolved = database.url().await.unwrap();
    assert!(
        resolved.contains(&format!("{role}:s3cret%2F%40%3A%3F@")),
        "{resolved}"
    );
    let (client, conn) = tokio_postgres::connect(&resolved, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, role);
    drop(client);
    // Roles outlive the test's database; this one owns nothing.
    let _ = admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;

    // Without DATABASE_SECRET_ARN the URL is DATABASE_URL as it is.
    let plain = Database::from_lookup(&env(&[]), url.clone()).unwrap();
    assert_eq!(plain.url().await.unwrap(), url);
}

#[tokio::test]
async fn a_secret_that_cannot_be_used_is_named_not_quoted() {
    let moto = na_test_support::MotoServer::start().await;
    let url = "postgres://db.example:5432/nostr_analytics?sslmode=verify-full".to_owned();
    let not_json = secret(&moto, "plain", "hunter2-password").await;
    let no_password = secret(&moto, "partial", r#"{"username": "na"}"#).await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nowhere-AbCdEf";
    for (arn, says) in [
        (not_json.as_str(), "not JSON"),
        (no_password.as_str(), "a field is missing"),
        (missing, "cannot read it"),
    ] {
        let vars = lookup(arn, &moto);
        let error = Database::from_lookup(&env(&vars), url.clone())
            .unwrap()
            .url()
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(arn) && error.contains(says), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
    // A secret without the function's credentials is refused before any call.
    let vars = [("DATABASE_SECRET_ARN", missing.to_owned())];
    let error = Database::from_lookup(&env(&vars), url).unwrap_err();
    assert_eq!(error.to_string(), "AWS_ACCESS_KEY_ID is not set");
}
