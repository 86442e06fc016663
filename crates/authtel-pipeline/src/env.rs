//! Settings from `AUTHTEL_*` environment variables ([`EnvConfig`]).
//!
//! Every value is checked here or in [`Settings::validate`]: a typo, an absurd value or
//! bytes that are not UTF-8 fail at startup with the variable named — never a panic,
//! never silently ignored.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Backpressure, ConfigError, Dispatch, FsyncPolicy, RateLimit, Settings};

/// Settings read from `AUTHTEL_*` variables.
///
/// | variable | value |
/// |---|---|
/// | `AUTHTEL_FORWARDERS` | comma-separated forwarder kinds expected (`sql,kafka`) |
/// | `AUTHTEL_PIPELINE_DISPATCH` | `sync`, `async`, `auto` |
/// | `AUTHTEL_PIPELINE_QUEUE_CAPACITY`, `_BATCH_SIZE`, `_WORKERS` | integers |
/// | `AUTHTEL_PIPELINE_BACKPRESSURE` | `block`, `drop`, `spill` |
/// | `AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS`, `_CALL_TIMEOUT_MS` | milliseconds |
/// | `AUTHTEL_PIPELINE_ALLOW_DROPPING_AUDIT` | `true`, `false` |
/// | `AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS`, `_RETRY_BASE_MS`, `_RETRY_MAX_MS`, `_RETRY_JITTER` | integers, `true`/`false` |
/// | `AUTHTEL_PIPELINE_BREAKER_FAILURES`, `_BREAKER_OPEN_MS` | integers |
/// | `AUTHTEL_PIPELINE_SPILL_DIR`, `_SPILL_MAX_BYTES`, `_SPILL_MAX_LINE_BYTES` | path, integers |
/// | `AUTHTEL_PIPELINE_FSYNC`, `_FSYNC_INTERVAL_MS` | `batch`, `interval`, `never`; milliseconds |
/// | `AUTHTEL_PIPELINE_DEAD_LETTER_DIR` | path |
/// | `AUTHTEL_PIPELINE_SAMPLE_RATE` | `0.0` to `1.0` |
/// | `AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC`, `_RATE_LIMIT_BURST` | integers |
///
/// Other `AUTHTEL_*` variables belong to other crates and are ignored; an unknown
/// `AUTHTEL_PIPELINE_*` variable is an error (a typo would otherwise be silently ignored).
///
/// ```
/// use authtel_pipeline::{Backpressure, EnvConfig, FsyncPolicy};
/// let env = EnvConfig::from_vars([
///     ("AUTHTEL_PIPELINE_BATCH_SIZE", "100"),
///     ("AUTHTEL_PIPELINE_BACKPRESSURE", "spill"),
///     ("AUTHTEL_PIPELINE_SPILL_DIR", "/var/lib/app/spill"),
///     ("AUTHTEL_PIPELINE_FSYNC", "never"),
///     ("AUTHTEL_FORWARDERS", "sql, kafka"),
/// ]).unwrap();
/// assert_eq!(env.settings.batch_size, 100);
/// assert_eq!(env.settings.backpressure, Backpressure::Spill);
/// assert_eq!(env.settings.fsync, FsyncPolicy::Never);
/// assert_eq!(env.forwarders, ["sql", "kafka"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvConfig {
    /// The settings every forwarder starts from.
    pub settings: Settings,
    /// The forwarder kinds `AUTHTEL_FORWARDERS` asks for.
    pub forwarders: Vec<String>,
}

const KNOWN: &str = "AUTHTEL_PIPELINE_{DISPATCH,QUEUE_CAPACITY,BATCH_SIZE,WORKERS,BACKPRESSURE,BLOCK_TIMEOUT_MS,CALL_TIMEOUT_MS,ALLOW_DROPPING_AUDIT,RETRY_MAX_ATTEMPTS,RETRY_BASE_MS,RETRY_MAX_MS,RETRY_JITTER,BREAKER_FAILURES,BREAKER_OPEN_MS,SPILL_DIR,SPILL_MAX_BYTES,SPILL_MAX_LINE_BYTES,FSYNC,FSYNC_INTERVAL_MS,DEAD_LETTER_DIR,SAMPLE_RATE,RATE_LIMIT_PER_SEC,RATE_LIMIT_BURST}";

impl EnvConfig {
    /// Reads the process environment. A variable that is not valid UTF-8 is an error
    /// when its name starts with `AUTHTEL_` ([`ConfigError::NotUnicode`]) and ignored
    /// otherwise — never a panic.
    ///
    /// ```
    /// let env = authtel_pipeline::EnvConfig::from_env();
    /// assert!(env.is_ok() || env.is_err()); // whatever the environment holds, no panic
    /// ```
    pub fn from_env() -> Result<EnvConfig, ConfigError> {
        EnvConfig::from_vars(utf8_vars(std::env::vars_os())?)
    }

    /// Reads `(key, value)` pairs; tests pass their own instead of touching the process.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<EnvConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut cfg = EnvConfig::default();
        let mut fsync_interval = None;
        let mut fsync_kind = None;
        let mut rate = None;
        let mut burst = None;
        for (k, v) in vars {
            let (key, raw) = (k.as_ref(), v.as_ref().trim());
            let s = &mut cfg.settings;
            match key {
                "AUTHTEL_FORWARDERS" => {
                    cfg.forwarders = raw
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "AUTHTEL_PIPELINE_DISPATCH" => {
                    s.dispatch = match raw {
                        "sync" => Dispatch::Sync,
                        "async" => Dispatch::Async,
                        "auto" => Dispatch::Auto,
                        _ => return Err(invalid(key, raw, "sync|async|auto")),
                    }
                }
                "AUTHTEL_PIPELINE_QUEUE_CAPACITY" => s.queue_capacity = int(key, raw)?,
                "AUTHTEL_PIPELINE_BATCH_SIZE" => s.batch_size = int(key, raw)?,
                "AUTHTEL_PIPELINE_WORKERS" => s.workers = int(key, raw)?,
                "AUTHTEL_PIPELINE_BACKPRESSURE" => {
                    s.backpressure = match raw {
                        "block" => Backpressure::Block {
                            timeout: s.block_timeout,
                        },
                        "drop" => Backpressure::Drop,
                        "spill" => Backpressure::Spill,
                        _ => return Err(invalid(key, raw, "block|drop|spill")),
                    }
                }
                "AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS" => {
                    s.block_timeout = millis(key, raw)?;
                    if let Backpressure::Block { timeout } = &mut s.backpressure {
                        *timeout = s.block_timeout;
                    }
                }
                "AUTHTEL_PIPELINE_CALL_TIMEOUT_MS" => s.call_timeout = millis(key, raw)?,
                "AUTHTEL_PIPELINE_ALLOW_DROPPING_AUDIT" => {
                    s.allow_dropping_audit = boolean(key, raw)?
                }
                "AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS" => s.retry.max_attempts = int(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_BASE_MS" => s.retry.base = millis(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_MAX_MS" => s.retry.max = millis(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_JITTER" => s.retry.jitter = boolean(key, raw)?,
                "AUTHTEL_PIPELINE_BREAKER_FAILURES" => s.breaker.failure_threshold = int(key, raw)?,
                "AUTHTEL_PIPELINE_BREAKER_OPEN_MS" => s.breaker.open_for = millis(key, raw)?,
                "AUTHTEL_PIPELINE_SPILL_DIR" => {
                    if raw.is_empty() {
                        return Err(invalid(key, raw, "a directory path"));
                    }
                    s.spill_dir = Some(PathBuf::from(raw));
                }
                "AUTHTEL_PIPELINE_SPILL_MAX_BYTES" => s.spill_max_bytes = int(key, raw)?,
                "AUTHTEL_PIPELINE_SPILL_MAX_LINE_BYTES" => s.spill_max_line_bytes = int(key, raw)?,
                "AUTHTEL_PIPELINE_FSYNC" => {
                    fsync_kind = Some(match raw {
                        "batch" => 0,
                        "interval" => 1,
                        "never" => 2,
                        _ => return Err(invalid(key, raw, "batch|interval|never")),
                    })
                }
                "AUTHTEL_PIPELINE_FSYNC_INTERVAL_MS" => fsync_interval = Some(millis(key, raw)?),
                "AUTHTEL_PIPELINE_DEAD_LETTER_DIR" => {
                    if raw.is_empty() {
                        return Err(invalid(key, raw, "a directory path"));
                    }
                    s.dead_letter_dir = Some(PathBuf::from(raw));
                }
                "AUTHTEL_PIPELINE_SAMPLE_RATE" => {
                    s.sample_rate = raw
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| invalid(key, raw, "a number in 0.0..=1.0"))?
                }
                "AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC" => rate = Some(int::<u32>(key, raw)?),
                "AUTHTEL_PIPELINE_RATE_LIMIT_BURST" => burst = Some(int::<u32>(key, raw)?),
                k if k.starts_with("AUTHTEL_PIPELINE_") => {
                    return Err(ConfigError::UnknownKey {
                        key: k.to_owned(),
                        known: KNOWN,
                    });
                }
                _ => {}
            }
        }
        let s = &mut cfg.settings;
        s.fsync = match (fsync_kind, fsync_interval) {
            (Some(1) | None, Some(d)) => FsyncPolicy::Interval(d),
            (Some(1), None) => FsyncPolicy::Interval(Duration::from_secs(1)),
            (Some(2), _) => FsyncPolicy::Never,
            _ => FsyncPolicy::EveryBatch,
        };
        match (rate, burst) {
            (Some(per_second), burst) => {
                s.rate_limit = Some(RateLimit {
                    per_second,
                    burst: burst.unwrap_or(per_second),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    key: "AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC".to_owned(),
                    because: "AUTHTEL_PIPELINE_RATE_LIMIT_BURST is set (a burst needs a rate)",
                });
            }
            (None, None) => {}
        }
        s.validate().map_err(|e| match e {
            ConfigError::InvalidValue {
                key,
                value,
                expected,
            } => ConfigError::InvalidValue {
                key: env_name(&key),
                value,
                expected,
            },
            ConfigError::Missing { key, because } => ConfigError::Missing {
                key: env_name(&key),
                because,
            },
            other => other,
        })?;
        Ok(cfg)
    }
}

/// The `(name, value)` pairs as text: non-UTF-8 `AUTHTEL_*` variables are an error,
/// other non-UTF-8 variables (not ours) are left out.
fn utf8_vars(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in vars {
        let ours = k.as_encoded_bytes().starts_with(b"AUTHTEL_");
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => out.push((k, v)),
            (k, _) if ours => {
                return Err(ConfigError::NotUnicode {
                    key: k.unwrap_or_else(|k| k.to_string_lossy().into_owned()),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

fn env_name(setting: &str) -> String {
    let known = match setting {
        "call_timeout" => Some("CALL_TIMEOUT_MS"),
        "block_timeout" | "backpressure.timeout" => Some("BLOCK_TIMEOUT_MS"),
        "retry.base" => Some("RETRY_BASE_MS"),
        "retry.max" => Some("RETRY_MAX_MS"),
        "breaker.open_for" => Some("BREAKER_OPEN_MS"),
        "breaker.failure_threshold" => Some("BREAKER_FAILURES"),
        _ => None,
    };
    if let Some(name) = known {
        return format!("AUTHTEL_PIPELINE_{name}");
    }
    format!(
        "AUTHTEL_PIPELINE_{}",
        setting.replace('.', "_").to_ascii_uppercase()
    )
}

fn invalid(key: &str, raw: &str, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: authtel_core::metadata::truncate(raw, 128).to_owned(),
        expected,
    }
}

fn int<T: std::str::FromStr>(key: &str, raw: &str) -> Result<T, ConfigError> {
    raw.parse()
        .map_err(|_| invalid(key, raw, "a non-negative integer"))
}

fn millis(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    raw.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, raw, "a whole number of milliseconds"))
}

fn boolean(key: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(key, raw, "true|false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_values_are_refused_with_the_variable_named() {
        for (key, value) in [
            ("AUTHTEL_PIPELINE_CALL_TIMEOUT_MS", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_RETRY_MAX_MS", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_BREAKER_OPEN_MS", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_FSYNC_INTERVAL_MS", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_SPILL_MAX_BYTES", "0".to_owned()),
            ("AUTHTEL_PIPELINE_QUEUE_CAPACITY", u64::MAX.to_string()),
            ("AUTHTEL_PIPELINE_QUEUE_CAPACITY", "1000000000".to_owned()),
            ("AUTHTEL_PIPELINE_SPILL_DIR", "relative/spill".to_owned()),
            ("AUTHTEL_PIPELINE_DEAD_LETTER_DIR", "dead".to_owned()),
        ] {
            let err = EnvConfig::from_vars([(key, value.as_str())]).unwrap_err();
            let named = match &err {
                ConfigError::InvalidValue { key, .. } => key.clone(),
                other => panic!("{key}={value}: unexpected {other:?}"),
            };
            assert_eq!(named, key, "{key}={value}: {err}");
        }
        let err = EnvConfig::from_vars([("AUTHTEL_PIPELINE_RATE_LIMIT_BURST", "10")]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Missing { key, .. } if key == "AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_variables_are_a_typed_error_when_ours_and_ignored_otherwise() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(vec![b'x', 0xff, 0xfe]);
        let ours = [(OsString::from("AUTHTEL_PIPELINE_SPILL_DIR"), bad())];
        assert!(matches!(
            utf8_vars(ours),
            Err(ConfigError::NotUnicode { key }) if key == "AUTHTEL_PIPELINE_SPILL_DIR"
        ));
        let ours_name = [(
            OsString::from_vec(b"AUTHTEL_\xff".to_vec()),
            OsString::from("1"),
        )];
        assert!(matches!(
            utf8_vars(ours_name),
            Err(ConfigError::NotUnicode { .. })
        ));
        let theirs = [
            (OsString::from("LANG"), bad()),
            (
                OsString::from("AUTHTEL_PIPELINE_WORKERS"),
                OsString::from("2"),
            ),
        ];
        let vars = utf8_vars(theirs).unwrap();
        assert_eq!(
            vars,
            [("AUTHTEL_PIPELINE_WORKERS".to_owned(), "2".to_owned())]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// Whatever the keys and values, reading them is a value or a typed error.
        #[test]
        fn any_environment_is_a_config_or_an_error_never_a_panic(
            vars in proptest::collection::vec(
                (
                    proptest::sample::select(KNOWN_NAMES.to_vec()),
                    proptest::prop_oneof![
                        proptest::string::string_regex("[0-9]{0,25}").unwrap(),
                        proptest::string::string_regex("-?[0-9a-z./ ]{0,12}").unwrap(),
                        proptest::prelude::any::<String>(),
                    ],
                ),
                0..8,
            )
        ) {
            let _ = EnvConfig::from_vars(vars);
        }
    }

    const KNOWN_NAMES: [&str; 25] = [
        "AUTHTEL_FORWARDERS",
        "AUTHTEL_PIPELINE_DISPATCH",
        "AUTHTEL_PIPELINE_QUEUE_CAPACITY",
        "AUTHTEL_PIPELINE_BATCH_SIZE",
        "AUTHTEL_PIPELINE_WORKERS",
        "AUTHTEL_PIPELINE_BACKPRESSURE",
        "AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS",
        "AUTHTEL_PIPELINE_CALL_TIMEOUT_MS",
        "AUTHTEL_PIPELINE_ALLOW_DROPPING_AUDIT",
        "AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS",
        "AUTHTEL_PIPELINE_RETRY_BASE_MS",
        "AUTHTEL_PIPELINE_RETRY_MAX_MS",
        "AUTHTEL_PIPELINE_RETRY_JITTER",
        "AUTHTEL_PIPELINE_BREAKER_FAILURES",
        "AUTHTEL_PIPELINE_BREAKER_OPEN_MS",
        "AUTHTEL_PIPELINE_SPILL_DIR",
        "AUTHTEL_PIPELINE_SPILL_MAX_BYTES",
        "AUTHTEL_PIPELINE_SPILL_MAX_LINE_BYTES",
        "AUTHTEL_PIPELINE_FSYNC",
        "AUTHTEL_PIPELINE_FSYNC_INTERVAL_MS",
        "AUTHTEL_PIPELINE_DEAD_LETTER_DIR",
        "AUTHTEL_PIPELINE_SAMPLE_RATE",
        "AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC",
        "AUTHTEL_PIPELINE_RATE_LIMIT_BURST",
        "AUTHTEL_PIPELINE_TYPO",
    ];

    #[test]
    fn env_errors_name_the_variable() {
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BATCH_SIZE", "0")]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::InvalidValue { key, value, .. } if key == "AUTHTEL_PIPELINE_BATCH_SIZE" && value == "0"),
            "{e}"
        );
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BACKPRESSURE", "spill")]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Missing { key, .. } if key == "AUTHTEL_PIPELINE_SPILL_DIR"),
            "{e}"
        );
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BATCHSIZE", "5")]).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
        let ok = EnvConfig::from_vars([("AUTHTEL_SQL_URL", "x"), ("PATH", "/bin")]).unwrap();
        assert_eq!(ok.settings, Settings::default());
    }
}
