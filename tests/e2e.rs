//! End-to-end flows across ingest, jobs and query, against a real PostgreSQL and real
//! websocket relays on loopback. One binary; a module per flow.
#![allow(
    clippy::unwrap_used,
    reason = "a test or benchmark reports failure by panicking"
)]

mod flows;
