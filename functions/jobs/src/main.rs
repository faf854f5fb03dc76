use aws_lambda_events::event::sqs::SqsEvent;
use jobs::JobsState;
use lambda_runtime::{LambdaEvent, service_fn};
use na_ingest::IngestConfig;
use na_storage::Db;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    na_telemetry::init();
    let db = Db::connect(&na_storage::database_url_from_env(), 4).await?;
    let state = JobsState::new(db, IngestConfig::from_env()?)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let state = &state;
        async move { Ok::<_, lambda_runtime::Error>(jobs::handle_sqs(state, event.payload).await) }
    }))
    .await
}
