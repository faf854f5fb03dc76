//! Test fixtures shared by the crates' integration tests: a fresh PostgreSQL database per
//! test, loopback relays (the real nostr-relay-builder relay, and a scripted relay that
//! sends exactly what a test tells it to, malformed or forged), signed events, and an
//! SQS-compatible server (`moto_server`).
//!
//! Fixtures read their own settings from the environment (`NA_PLUGIN_DIR`, `TEST_DATABASE_URL`);
//! the libraries they test do not.
//!
//! A missing service fails the test with a message that says what to start; nothing is
//! skipped.

mod database;
pub mod emf;
mod lnurl_server;
mod moto;
mod pg_server;
mod plugins;
mod proxy;
mod relays;

pub use database::{fresh_database_url, wait_for_safe_horizon};
pub use lnurl_server::{LnurlAnswer, LnurlServer};
pub use moto::MotoServer;
pub use pg_server::{PgServer, PgSetup};
pub use plugins::{built_component, plugin_dir};
pub use proxy::CuttableProxy;
pub use relays::{ScriptedRelay, forge_signature, start_relay};
