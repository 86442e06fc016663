//! Cross-sink tests of the README's promises.
//!
//! This crate has no code of its own: its integration tests attach every authtel sink at
//! once (the default logger, the recent store, SQLite and PostgreSQL, Kafka, OTLP,
//! Prometheus, spill and dead-letter files) and check two promises end to end:
//!
//! - `tests/canary_matrix.rs` (and `canary_matrix_opted_in.rs`): secrets planted in every
//!   position a caller controls reach no output, in no encoding.
//! - `tests/over_redaction_matrix.rs`: legitimate values survive every sink with their value
//!   and JSON type.
//! - `tests/redactions_count_once.rs`: the redaction counter counts a record once, not once
//!   per sink.
//!
//! Run them with `cargo nextest run -p authtel-promises`; PostgreSQL and Kafka come from
//! `DATABASE_URL` and `KAFKA_BOOTSTRAP` (`eval "$(cargo xtask services start)"`), and the
//! tests fail rather than skip when `CI` is set and a service is missing.
