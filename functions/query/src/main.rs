use axum::response::Response;

/// Freed memory is kept for reuse (the workspace's `mimalloc` entry says why).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let cfg = query::Config::from_env()?;
    na_telemetry::init(&cfg.log);
    let emf = na_telemetry::Emf::install(&|name| std::env::var(name).ok())?;
    // One request per invocation: its metrics go to the log as it is answered.
    let app = query::app_from_config(cfg)
        .await?
        .layer(axum::middleware::map_response(move |response: Response| {
            let id = response
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            emf.flush(id);
            async move { response }
        }));
    lambda_http::run(app).await
}
