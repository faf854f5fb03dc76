# Shared settings for the project's scripts (sourced, not run).
# Builds reuse one target directory outside the clone, so CI and repeated runs stay warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/nostr-analytics/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/nostr_analytics}"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Metric plugin components (scripts/build-plugins) and their wasm32 build directory.
export NA_PLUGIN_DIR="${NA_PLUGIN_DIR:-/var/cache/nostr-analytics/plugins}"
export NA_PLUGIN_TARGET_DIR="${NA_PLUGIN_TARGET_DIR:-/var/cache/nostr-analytics/plugins-target}"
mkdir -p "$CARGO_TARGET_DIR"
# npm's download cache (clients/): warm across clones and runs, as the cargo target is.
export NA_NPM_CACHE="${NA_NPM_CACHE:-/var/cache/nostr-analytics/npm}"
# aws-sam-cli's virtualenv (scripts/setup).
export NA_SAM_VENV="${NA_SAM_VENV:-/var/cache/nostr-analytics/sam-venv}"
