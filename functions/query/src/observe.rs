//! Every request measured: how long it took, by route template and window class, and
//! how it ended (`na_telemetry::metrics::request`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// The layer around every route, outside the guards, so a timeout or a caught panic is
/// measured as the caller saw it.
pub(crate) async fn request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let window = crate::request::window_class(request.uri());
    let response = next.run(request).await;
    na_telemetry::metrics::request(route, window, response.status().as_u16(), started.elapsed());
    response
}
