//! Reading a configuration from `AUTHTEL_DETECT_*` variables, and checking one: the zero
//! and range rules, and that the memory bound holds every enabled detector's minimal
//! tables ([`crate::budget`]). Above both the configuration types and the detectors'
//! state, which the budget measures.

use std::time::Duration;

use crate::config::{ConfigError, DetectConfig, MAX_SPRAYING_THRESHOLD, Mode, Rung};

const NUMBER: &str = "a whole number";
const DURATION: &str = "a duration such as 500ms, 90s, 15m, 1h or 1d";
const MODE: &str = "one of enforce, monitor, off";
const BOOL: &str = "true or false";
const LADDER: &str = "a ladder such as 7:1m,10:10m,15:15m,20:1h,25:1d";
const LIST: &str = "a comma-separated list of method names";

/// Parses `90s`, `15m`, `1h`, `1d`, `500ms`, `1h 30m` (humantime's forms, as the CLI's flags);
/// a bare number is seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    // A bare number is seconds (docs/detect.md, "Configuration"); the rest is humantime's.
    match s.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(s).ok(),
    }
}

fn parse_ladder(s: &str) -> Option<Vec<Rung>> {
    s.split(',')
        .map(|step| {
            let (failures, block) = step.split_once(':')?;
            Some(Rung {
                failures: failures.trim().parse().ok()?,
                block: parse_duration(block)?,
            })
        })
        .collect()
}

/// The environment prefix.
pub const ENV_PREFIX: &str = "AUTHTEL_DETECT_";

impl DetectConfig {
    /// The defaults overridden by the process's `AUTHTEL_DETECT_*` variables, validated.
    pub fn from_env() -> Result<DetectConfig, ConfigError> {
        DetectConfig::from_vars(std::env::vars())
    }

    /// The defaults overridden by `vars` (name, value pairs; names not starting with
    /// `AUTHTEL_DETECT_` are ignored), validated. `AUTHTEL_DETECT_MODE` sets every
    /// detector's mode; a detector's own `…_MODE` wins over it.
    ///
    /// ```
    /// use authtel_detect::{ConfigError, DetectConfig};
    /// let err = DetectConfig::from_vars([("AUTHTEL_DETECT_SPRAYING_WINDOW", "soon")]).unwrap_err();
    /// assert!(matches!(err, ConfigError::InvalidValue { .. }));
    /// let err = DetectConfig::from_vars([("AUTHTEL_DETECT_BRUTEFORCE_MODE", "off")]).unwrap_err();
    /// assert!(matches!(err, ConfigError::UnknownVariable { .. }));
    /// ```
    pub fn from_vars<K, V>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<DetectConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = DetectConfig::default();
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        // The global mode first, so each detector's own mode overrides it.
        vars.sort_by_key(|(k, _)| k != "AUTHTEL_DETECT_MODE");
        for (var, value) in &vars {
            config.set(&var[ENV_PREFIX.len()..], var, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    fn set(&mut self, name: &str, var: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |expected| ConfigError::InvalidValue {
            var: var.to_owned(),
            value: value.chars().take(64).collect(),
            expected,
        };
        let num = || value.trim().parse::<u32>().map_err(|_| bad(NUMBER));
        let dur = || parse_duration(value).ok_or_else(|| bad(DURATION));
        let mode = || value.parse::<Mode>().map_err(|()| bad(MODE));
        let boolean = || match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(bad(BOOL)),
        };
        let (b, s, st, m, n, t, r) = (
            &mut self.brute_force,
            &mut self.spraying,
            &mut self.stuffing,
            &mut self.mfa,
            &mut self.new_location,
            &mut self.travel,
            &mut self.refresh_reuse,
        );
        match name {
            "MEMORY_BYTES" => {
                self.memory_bytes = value.trim().parse::<usize>().map_err(|_| bad(NUMBER))?
            }
            "MODE" => {
                let mode = mode()?;
                b.mode = mode;
                s.mode = mode;
                st.mode = mode;
                m.mode = mode;
                n.mode = mode;
                t.mode = mode;
                r.mode = mode;
            }
            "BRUTE_FORCE_MODE" => b.mode = mode()?,
            "BRUTE_FORCE_IP_IDENTIFIER_THRESHOLD" => b.ip_identifier_threshold = num()?,
            "BRUTE_FORCE_IP_IDENTIFIER_WINDOW" => b.ip_identifier_window = dur()?,
            "BRUTE_FORCE_IP_IDENTIFIER_BLOCK" => b.ip_identifier_block = dur()?,
            "BRUTE_FORCE_IP_WINDOW" => b.ip_window = dur()?,
            "BRUTE_FORCE_IP_RESET_ON_SUCCESS" => b.ip_reset_on_success = boolean()?,
            "BRUTE_FORCE_IP_SIGNAL_THRESHOLD" => b.ip_signal_threshold = num()?,
            "BRUTE_FORCE_IP_LADDER" => {
                b.ip_ladder = parse_ladder(value).ok_or_else(|| bad(LADDER))?
            }
            "BRUTE_FORCE_IDENTIFIER_FAILURE_FACTOR" => b.identifier_failure_factor = num()?,
            "BRUTE_FORCE_IDENTIFIER_WAIT_INCREMENT" => b.identifier_wait_increment = dur()?,
            "BRUTE_FORCE_IDENTIFIER_MAX_WAIT" => b.identifier_max_wait = dur()?,
            "BRUTE_FORCE_IDENTIFIER_FAILURE_RESET" => b.identifier_failure_reset = dur()?,
            "BRUTE_FORCE_QUICK_LOGIN_CHECK" => b.quick_login_check = dur()?,
            "BRUTE_FORCE_MIN_QUICK_LOGIN_WAIT" => b.min_quick_login_wait = dur()?,
            "SPRAYING_MODE" => s.mode = mode()?,
            "SPRAYING_IP_THRESHOLD" => s.ip_threshold = num()?,
            "SPRAYING_PREFIX_THRESHOLD" => s.prefix_threshold = num()?,
            "SPRAYING_WINDOW" => s.window = dur()?,
            "SPRAYING_BLOCK" => s.block = dur()?,
            "STUFFING_MODE" => st.mode = mode()?,
            "STUFFING_WINDOW" => st.window = dur()?,
            "STUFFING_MIN_ATTEMPTS" => st.min_attempts = num()?,
            "STUFFING_MIN_FAILURE_PCT" => st.min_failure_pct = num()?,
            "STUFFING_BASELINE_FACTOR" => st.baseline_factor = num()?,
            "STUFFING_INITIAL_BASELINE_PCT" => st.initial_baseline_pct = num()?,
            "STUFFING_MIN_DISTINCT_IDENTIFIERS" => st.min_distinct_identifiers = num()?,
            "STUFFING_MIN_DISTINCT_IPS" => st.min_distinct_ips = num()?,
            "STUFFING_UNKNOWN_USER_THRESHOLD" => st.unknown_user_threshold = num()?,
            "MFA_MODE" => m.mode = mode()?,
            "MFA_PUSH_METHODS" => {
                let methods: Vec<String> = value
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if methods.is_empty() {
                    return Err(bad(LIST));
                }
                m.push_methods = methods;
            }
            "MFA_PUSH_THRESHOLD" => m.push_threshold = num()?,
            "MFA_PUSH_WINDOW" => m.push_window = dur()?,
            "MFA_DENIALS_BEFORE_ACCEPT" => m.denials_before_accept = num()?,
            "MFA_DENY_WINDOW" => m.deny_window = dur()?,
            "MFA_CODE_THRESHOLD" => m.code_threshold = num()?,
            "MFA_CODE_WINDOW" => m.code_window = dur()?,
            "NEW_LOCATION_MODE" => n.mode = mode()?,
            "NEW_LOCATION_MIN_HISTORY" => n.min_history = num()?,
            "NEW_LOCATION_REQUIRE_BOTH" => n.require_both = boolean()?,
            "NEW_LOCATION_WINDOW" => n.window = dur()?,
            "TRAVEL_MODE" => t.mode = mode()?,
            "TRAVEL_MAX_SPEED_KMH" => t.max_speed_kmh = num()?,
            "TRAVEL_MIN_DISTANCE_KM" => t.min_distance_km = num()?,
            "TRAVEL_WINDOW" => t.window = dur()?,
            "REFRESH_REUSE_MODE" => r.mode = mode()?,
            "REFRESH_REUSE_REMEMBER" => r.remember = dur()?,
            "REFRESH_REUSE_WINDOW" => r.window = dur()?,
            _ => {
                return Err(ConfigError::UnknownVariable {
                    var: var.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Checks every setting: no zero thresholds or windows in enabled detectors, bounded
    /// percentages and set sizes, an increasing ladder, and a memory bound that holds the
    /// enabled detectors' minimal tables.
    ///
    /// ```
    /// use authtel_detect::{ConfigError, DetectConfig};
    /// let mut config = DetectConfig::default();
    /// config.spraying.ip_threshold = 0;
    /// assert_eq!(config.validate(), Err(ConfigError::Zero { field: "spraying.ip_threshold" }));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let zero = |field: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError::Zero { field })
            } else {
                Ok(())
            }
        };
        let at_most = |field: &'static str, value: u64, max: u64| {
            if value > max {
                Err(ConfigError::TooLarge { field, value, max })
            } else {
                Ok(())
            }
        };
        let ms = |d: Duration| d.as_millis() as u64;
        let b = &self.brute_force;
        if b.mode != Mode::Off {
            zero(
                "brute_force.ip_identifier_threshold",
                b.ip_identifier_threshold.into(),
            )?;
            zero(
                "brute_force.ip_identifier_window",
                ms(b.ip_identifier_window),
            )?;
            zero("brute_force.ip_window", ms(b.ip_window))?;
            zero(
                "brute_force.ip_signal_threshold",
                b.ip_signal_threshold.into(),
            )?;
            zero(
                "brute_force.identifier_failure_factor",
                b.identifier_failure_factor.into(),
            )?;
            zero(
                "brute_force.identifier_failure_reset",
                ms(b.identifier_failure_reset),
            )?;
            if b.ip_ladder.is_empty() {
                return Err(ConfigError::LadderNotIncreasing { step: 0 });
            }
            let mut last = 0;
            for (step, rung) in b.ip_ladder.iter().enumerate() {
                if rung.failures <= last {
                    return Err(ConfigError::LadderNotIncreasing { step });
                }
                last = rung.failures;
            }
        }
        let s = &self.spraying;
        if s.mode != Mode::Off {
            zero("spraying.ip_threshold", s.ip_threshold.into())?;
            zero("spraying.prefix_threshold", s.prefix_threshold.into())?;
            zero("spraying.window", ms(s.window))?;
            let max = MAX_SPRAYING_THRESHOLD.into();
            at_most("spraying.ip_threshold", s.ip_threshold.into(), max)?;
            at_most("spraying.prefix_threshold", s.prefix_threshold.into(), max)?;
        }
        let st = &self.stuffing;
        if st.mode != Mode::Off {
            zero("stuffing.window", ms(st.window))?;
            zero("stuffing.min_attempts", st.min_attempts.into())?;
            zero("stuffing.min_failure_pct", st.min_failure_pct.into())?;
            zero(
                "stuffing.unknown_user_threshold",
                st.unknown_user_threshold.into(),
            )?;
            at_most("stuffing.min_failure_pct", st.min_failure_pct.into(), 100)?;
            at_most(
                "stuffing.initial_baseline_pct",
                st.initial_baseline_pct.into(),
                100,
            )?;
        }
        let m = &self.mfa;
        if m.mode != Mode::Off {
            zero("mfa.push_threshold", m.push_threshold.into())?;
            zero("mfa.push_window", ms(m.push_window))?;
            zero("mfa.denials_before_accept", m.denials_before_accept.into())?;
            zero("mfa.deny_window", ms(m.deny_window))?;
            zero("mfa.code_threshold", m.code_threshold.into())?;
            zero("mfa.code_window", ms(m.code_window))?;
            at_most(
                "mfa.denials_before_accept",
                m.denials_before_accept.into(),
                255,
            )?;
        }
        let n = &self.new_location;
        if n.mode != Mode::Off {
            zero("new_location.window", ms(n.window))?;
        }
        let t = &self.travel;
        if t.mode != Mode::Off {
            zero("travel.max_speed_kmh", t.max_speed_kmh.into())?;
            zero("travel.window", ms(t.window))?;
        }
        let r = &self.refresh_reuse;
        if r.mode != Mode::Off {
            zero("refresh_reuse.remember", ms(r.remember))?;
            zero("refresh_reuse.window", ms(r.window))?;
        }
        let min = crate::budget::min_bytes(self);
        if self.memory_bytes < min {
            return Err(ConfigError::MemoryTooSmall {
                bytes: self.memory_bytes,
                min,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1w"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration(" 1h 30m "), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn every_setting_is_reachable_from_the_environment() {
        let vars = [
            ("AUTHTEL_DETECT_MEMORY_BYTES", "33554432"),
            ("AUTHTEL_DETECT_BRUTE_FORCE_MODE", "monitor"),
            ("AUTHTEL_DETECT_MODE", "off"),
            ("AUTHTEL_DETECT_BRUTE_FORCE_IP_LADDER", "3:1m,6:1h"),
            ("AUTHTEL_DETECT_BRUTE_FORCE_QUICK_LOGIN_CHECK", "0"),
            ("AUTHTEL_DETECT_MFA_PUSH_METHODS", "push, okta_verify"),
            ("AUTHTEL_DETECT_NEW_LOCATION_REQUIRE_BOTH", "false"),
            ("AUTHTEL_DETECT_TRAVEL_MODE", "enforce"),
            ("PATH", "/usr/bin"),
        ];
        let c = DetectConfig::from_vars(vars).unwrap();
        assert_eq!(c.memory_bytes, 32 << 20);
        assert_eq!(
            c.brute_force.mode,
            Mode::Monitor,
            "own mode wins over the global one"
        );
        assert_eq!(c.spraying.mode, Mode::Off);
        assert_eq!(c.travel.mode, Mode::Enforce);
        assert_eq!(c.brute_force.ip_ladder.len(), 2);
        assert_eq!(c.brute_force.quick_login_check, Duration::ZERO);
        assert_eq!(c.mfa.push_methods, ["push", "okta_verify"]);
        assert!(!c.new_location.require_both);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err =
            DetectConfig::from_vars([("AUTHTEL_DETECT_SPRAYING_IP_THRESHOLD", "-3")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("AUTHTEL_DETECT_SPRAYING_IP_THRESHOLD"),
            "{err}"
        );
        let err = DetectConfig::from_vars([("AUTHTEL_DETECT_BRUTE_FORCE_IP_LADDER", "10:1m,7:1h")])
            .unwrap_err();
        assert_eq!(err, ConfigError::LadderNotIncreasing { step: 1 });
        let err = DetectConfig::from_vars([("AUTHTEL_DETECT_STUFFING_MIN_FAILURE_PCT", "150")])
            .unwrap_err();
        assert!(matches!(err, ConfigError::TooLarge { max: 100, .. }));
        let err = DetectConfig::from_vars([("AUTHTEL_DETECT_MEMORY_BYTES", "1000")]).unwrap_err();
        assert!(matches!(err, ConfigError::MemoryTooSmall { .. }), "{err}");
        // Zero checks skip detectors that are off.
        let mut c = DetectConfig::default();
        c.spraying.mode = Mode::Off;
        c.spraying.ip_threshold = 0;
        assert_eq!(c.validate(), Ok(()));
    }
}
