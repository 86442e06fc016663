//! Topic creation. Audit topics should be created on purpose (partitions, retention) rather
//! than auto-created with broker defaults, so the crate offers one small helper.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config;
use crate::error::{AdminError, BuildError};

/// Creates `topic` with `partitions` partitions (replication factor 1 unless the broker
/// decides), waiting at most `timeout`. An existing topic is not an error.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// authtel_kafka::create_topic("127.0.0.1:9092", "auth-audit", 6, std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
pub async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<(), CreateTopicError> {
    config::validate_bootstrap(bootstrap)?;
    config::validate_topic(topic)?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|source| AdminError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })?;
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let spec = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = admin
        .create_topics([&spec], &options)
        .await
        .map_err(|source| AdminError::Request {
            topic: topic.to_owned(),
            bootstrap: bootstrap.to_owned(),
            source,
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(AdminError::Rejected { topic: name, code }.into()),
        }
    }
    Ok(())
}

/// Why [`create_topic`] failed: bad arguments or the broker's answer.
#[derive(Debug, thiserror::Error)]
pub enum CreateTopicError {
    /// The bootstrap address or topic name is invalid.
    #[error(transparent)]
    Invalid(#[from] BuildError),
    /// The broker could not be asked or refused.
    #[error(transparent)]
    Admin(#[from] AdminError),
}
