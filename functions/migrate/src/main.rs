//! The deploy's migrate step on Lambda: each invocation brings `DATABASE_URL`'s database to
//! this build's schema (one at a time: an advisory lock) and answers what it applied. It
//! never creates the database; `nostr-analytics migrate` is the same step from a shell.

use lambda_runtime::{LambdaEvent, service_fn};

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let var = |name: &str| std::env::var(name).ok();
    na_telemetry::init(&na_telemetry::LogSettings::from_lookup(&var));
    let url = na_aws::Database::from_lookup(&var, na_storage::database_url(&var))?
        .url()
        .await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let url = url.clone();
        async move {
            let done = na_storage::migrate(&url, na_storage::CreateDatabase::Never).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::json!({
                "version": done.version,
                "applied": done.applied,
            }))
        }
    }))
    .await
}
