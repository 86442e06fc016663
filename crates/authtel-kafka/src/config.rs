//! Validation of the few settings this crate owns, and the compression choice.

use crate::error::BuildError;

/// The compression codec for produced batches. All four are compiled into the bundled
/// librdkafka by rdkafka's default features (zstd would need rdkafka's `zstd` feature; set
/// it with `with_config("compression.type", "zstd")` if you enable that).
///
/// ```
/// use authtel_kafka::Compression;
/// assert_eq!(Compression::default(), Compression::Lz4);
/// assert_eq!(Compression::Gzip.as_str(), "gzip");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (zlib).
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: fast, and a good ratio on JSON.
    #[default]
    Lz4,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
        }
    }
}

pub(crate) fn validate_bootstrap(bootstrap: &str) -> Result<(), BuildError> {
    if bootstrap.trim().is_empty() {
        return Err(BuildError::EmptyBootstrap);
    }
    for entry in bootstrap.split(',').map(str::trim) {
        // "PLAINTEXT://host:port" and "host:port" are both accepted by librdkafka.
        let addr = entry.rsplit("://").next().unwrap_or(entry);
        let valid = match addr.rsplit_once(':') {
            Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
            None => false,
        };
        if !valid {
            return Err(BuildError::InvalidBootstrap {
                entry: entry.to_owned(),
            });
        }
    }
    Ok(())
}

pub(crate) fn validate_topic(name: &str) -> Result<(), BuildError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 249 {
        Some("it is longer than 249 characters")
    } else if name == "." || name == ".." {
        Some("\".\" and \"..\" are reserved")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        Some("it has a character outside a-z A-Z 0-9 . _ -")
    } else {
        None
    };
    match why {
        Some(why) => Err(BuildError::InvalidTopic {
            name: authtel_core::metadata::truncate(name, 300).to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

pub(crate) fn validate_source(source: &str) -> Result<(), BuildError> {
    if source.trim().is_empty() || source.chars().any(char::is_control) {
        return Err(BuildError::InvalidSource {
            source_attr: source.to_owned(),
        });
    }
    Ok(())
}

/// Refuses settings that would break "a record counts as delivered only when every
/// in-sync replica has it, once, in order".
pub(crate) fn refuse_unsafe_producer_setting(key: &str, value: &str) -> Result<(), BuildError> {
    let why = match (key, value.trim()) {
        ("enable.idempotence", v) if !v.eq_ignore_ascii_case("true") => {
            Some("without idempotence a retried record can be duplicated or reordered per user")
        }
        ("acks" | "request.required.acks", v) if v != "all" && v != "-1" => {
            Some("a record would count as delivered before every in-sync replica has it")
        }
        _ => None,
    };
    match why {
        Some(why) => Err(BuildError::RefusedSetting {
            key: key.to_owned(),
            value: value.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_addresses_are_checked_entry_by_entry() {
        assert!(validate_bootstrap("127.0.0.1:9092").is_ok());
        assert!(validate_bootstrap("a:1, PLAINTEXT://b:9093").is_ok());
        assert!(matches!(
            validate_bootstrap("  "),
            Err(BuildError::EmptyBootstrap)
        ));
        let err = validate_bootstrap("a:1,broker").unwrap_err();
        assert!(err.to_string().contains("\"broker\""), "{err}");
        assert!(validate_bootstrap("a:notaport").is_err());
        assert!(validate_bootstrap(":9092").is_err());
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic("auth.audit-v1_x").is_ok());
        for bad in ["", ".", "..", "with space", "ümlaut", &"x".repeat(250)] {
            assert!(validate_topic(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn settings_that_weaken_delivery_are_refused() {
        assert!(refuse_unsafe_producer_setting("acks", "all").is_ok());
        assert!(refuse_unsafe_producer_setting("acks", "-1").is_ok());
        assert!(refuse_unsafe_producer_setting("linger.ms", "50").is_ok());
        let err = refuse_unsafe_producer_setting("acks", "1").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("kafka setting acks=\"1\" is refused"),
            "{err}"
        );
        assert!(refuse_unsafe_producer_setting("enable.idempotence", "false").is_err());
    }
}
