//! The delivery lanes [`Setup`] builds on the pipeline: `sql` (the batch writer into the
//! audit store), `kafka` (the producer) and `otlp` (audit records as OTLP log records).

use authtel_pipeline::{ForwarderConfig, Pipeline};

use super::{Authtel, Setup, SetupError};

/// The id the pipeline's handler is attached under.
pub(super) const HANDLER_ID: &str = "authtel-pipeline";

impl Authtel {
    /// Connects the SQL store (migrating its schema) and builds the Kafka producer, then
    /// one pipeline with a lane for each, attached to the global registry.
    pub(super) async fn attach_pipeline(
        &mut self,
        setup: &Setup,
        handle: tokio::runtime::Handle,
    ) -> Result<(), SetupError> {
        #[cfg_attr(
            not(any(feature = "sql", feature = "kafka", feature = "otlp")),
            allow(unused_mut)
        )]
        let mut lanes: Vec<ForwarderConfig> = Vec::new();
        #[cfg(feature = "sql")]
        if let Some(url) = &setup.sql_url {
            lanes.push(self.connect_sql(url).await?);
        }
        #[cfg(feature = "kafka")]
        if let Some((bootstrap, topic)) = &setup.kafka {
            let kafka = authtel_kafka::KafkaForwarder::builder(bootstrap.clone(), topic.clone())
                .with_source(format!("authtel://{}", setup.get_service_name()))
                .build()?;
            // One worker: each user's records reach the topic in order.
            lanes.push(ForwarderConfig::new("kafka", kafka).workers(1));
        }
        #[cfg(feature = "otlp")]
        if setup.otlp {
            // Acknowledged per batch by the collector: the lane retries, spills or
            // dead-letters what it did not take (the handler's log processor would drop it).
            let otlp = authtel_otlp::OtlpSink::builder()
                .with_service_name(setup.get_service_name())
                .build_forwarder()?;
            lanes.push(ForwarderConfig::new("otlp", otlp));
        }
        if lanes.is_empty() {
            return Ok(());
        }
        self.handle = Some(handle.clone());
        let mut builder = Pipeline::builder().runtime(handle);
        for mut lane in lanes {
            let id = lane.id().to_owned();
            if let Some(dir) = &setup.spill_dir {
                lane = lane.spill_dir(dir.join(&id));
            }
            if let Some(dir) = &setup.dead_letter_dir {
                lane = lane.dead_letter_dir(dir.join(&id));
            }
            builder = builder.forwarder(lane);
        }
        self.set_pipeline(builder.build()?)
    }

    #[cfg(feature = "sql")]
    async fn connect_sql(&mut self, url: &str) -> Result<ForwarderConfig, SetupError> {
        let lower = url.trim().to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                let store =
                    authtel_sql::AuditStore::builder(authtel_sql::postgres::connect(url).await?)
                        .build();
                store.migrate().await?;
                let lane = ForwarderConfig::new("sql", authtel_sql::BatchWriter::new(&store));
                self.postgres = Some(store);
                return Ok(lane);
            }
            #[cfg(not(feature = "postgres"))]
            return Err(SetupError::UnsupportedDatabase {
                url: authtel_sql::redact_url(url),
                advice: "this build has SQLite only; enable the `authtel/postgres` feature",
            });
        }
        if lower.contains("://") && !lower.starts_with("sqlite:") {
            return Err(SetupError::UnsupportedDatabase {
                url: authtel_sql::redact_url(url),
                advice: "use sqlite://path/to/audit.db, a file path, sqlite::memory: or postgres://…",
            });
        }
        let store =
            authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect(url).await?).build();
        store.migrate().await?;
        let lane = ForwarderConfig::new("sql", authtel_sql::BatchWriter::new(&store));
        self.sqlite = Some(store);
        Ok(lane)
    }
}
