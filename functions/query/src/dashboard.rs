//! The dashboard (`clients/dashboard`, built by `scripts/build-clients`): its page at `/`
//! and `/u/{npub}`, its bundle under `/assets/`, served from `NA_DASHBOARD_DIR` when that
//! is set. The page calls the API on the same origin through the TypeScript client, so
//! its policy allows nothing from anywhere else.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{ApiError, AppState};

/// Scripts, styles and requests from the page's own origin only; no frames, no plugins.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                      base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the built dashboard is: `NA_DASHBOARD_DIR`, checked to hold one.
///
/// # Errors
/// A directory without `index.html` (not built), naming it.
pub fn dir_from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<PathBuf>, String> {
    let Some(dir) = var("NA_DASHBOARD_DIR").filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let dir = PathBuf::from(dir);
    if !dir.join("index.html").is_file() {
        return Err(format!(
            "NA_DASHBOARD_DIR={}: no index.html there (build it: scripts/build-clients)",
            dir.display()
        ));
    }
    Ok(Some(dir))
}

/// The page and its assets, from `dir`.
pub(crate) fn routes(dir: &Path) -> Router<AppState> {
    let page = ServeFile::new(dir.join("index.html"));
    let missing = || async {
        ApiError::NotFound {
            detail: "no such file of the dashboard".into(),
        }
    };
    Router::new()
        .route_service("/", page.clone())
        .route_service("/u/{pubkey}", page)
        .nest_service(
            "/assets",
            ServeDir::new(dir.join("assets")).fallback(missing.into_service()),
        )
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}
