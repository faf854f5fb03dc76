//! End-to-end flows across ingest, jobs and query, against a real PostgreSQL and real
//! websocket relays on loopback. One binary; a module per flow.

mod flows;
