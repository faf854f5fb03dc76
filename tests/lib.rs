//! End-to-end tests live in `e2e.rs`, one module per flow under `flows/`.
