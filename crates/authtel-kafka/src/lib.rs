//! Kafka for authtel: audit records as CloudEvents on a Kafka topic, ordered per user,
//! never counted as delivered before the brokers acknowledge them, and a projector that
//! reads them back into the SQL audit store exactly once in effect.
//!
//! - [`KafkaForwarder`] is a [`Forwarder`](authtel_core::forward::Forwarder): the pipeline
//!   hands it batches; it returns `Ok` only when every record has an `acks=all` delivery
//!   report from librdkafka's idempotent producer. Failures are typed
//!   ([`DeliveryError`]) and classified transient (retry) or permanent.
//! - [`Projector`] is a consumer-group member that upserts records into a
//!   [`ProjectionSink`] — or any [`Forwarder`](authtel_core::forward::Forwarder), such as
//!   `authtel_sql::BatchWriter`, through [`ProjectorBuilder::build_forwarding`] — and commits
//!   offsets only after the store committed.
//! - [`cloudevents`] describes and decodes the message format.
//!
//! # In libraries
//! Don't depend on this crate: emit through `authtel_core::telemetry`.
//!
//! # In applications
//! ```no_run
//! use authtel_kafka::KafkaForwarder;
//! let kafka = KafkaForwarder::builder("broker-1:9092,broker-2:9092", "auth-audit")
//!     .with_source("authtel://login-service")
//!     .build()?;
//! // hand `kafka` to the authtel pipeline as one of its forwarders
//! # Ok::<(), authtel_kafka::BuildError>(())
//! ```
//!
//! # Feature flags
//! - `sqlite`: `authtel_sql::AuditStore<Sqlite>` implements [`ProjectionSink`].
//! - `postgres`: `authtel_sql::AuditStore<Postgres>` implements [`ProjectionSink`].
//!
//! Neither is needed to project into SQL: `build_forwarding(Arc::new(BatchWriter::new(&store)))`
//! does it through the `Forwarder` contract, without compiling sqlx into this crate.
//!
//! rdkafka is used with its default features: a bundled librdkafka built with its own
//! configure script (needs a C compiler, make and zlib; no cmake, no system librdkafka),
//! gzip, snappy and lz4 compression, plain-text connections.
//!
//! # Supported Rust versions
//! The workspace's `rust-version` (1.94) and newer.

mod admin;
pub mod cloudevents;
mod config;
mod delivery;
mod error;
mod health;
mod producer;
mod projector;
mod sink;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;

pub use admin::{CreateTopicError, create_topic};
pub use config::Compression;
pub use error::{AdminError, BuildError, DecodeError, DeliveryError, ProbeError};
pub use health::{
    HealthState, Lag, PartitionLag, ProducerCounters, ProducerHealth, ProjectorCounters,
};
pub use producer::{KafkaForwarder, KafkaForwarderBuilder};
pub use projector::dead_letter::{ORIGIN as DEAD_LETTER_ORIGIN, REASON as DEAD_LETTER_REASON};
pub use projector::{
    LagError, Projector, ProjectorBuilder, ProjectorError, ProjectorHealth, ProjectorState,
};
pub use sink::{ForwarderSink, ProjectFuture, ProjectionSink};
