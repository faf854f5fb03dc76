use lambda_runtime::{LambdaEvent, service_fn};
use na_ingest::IngestConfig;
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    na_telemetry::init();
    let cfg = IngestConfig::from_env()?;
    let db = Db::connect(&na_storage::database_url_from_env(), 4).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (db, cfg) = (&db, &cfg);
        async move {
            let deadline = na_telemetry::deadline(event.context.deadline);
            let report = na_ingest::handle_scheduled(db, cfg, Some(deadline)).await?;
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
