/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = query::Config::from_env()?;
    na_telemetry::init(&cfg.log);
    lambda_http::run(query::app_from_config(cfg).await?).await
}
