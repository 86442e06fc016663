//! Times and durations on the command line: `15m`, `24h`, `7d`, or RFC 3339 instants.

use std::str::FromStr;
use std::time::Duration;

use authtel_core::audit::Timestamp;

/// A point in time given either as an RFC 3339 instant or as an age before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// This instant.
    At(Timestamp),
    /// This long before the command runs.
    Ago(Duration),
}

impl TimeArg {
    /// The instant, resolving an age against `now`.
    pub(crate) fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            TimeArg::At(t) => t,
            TimeArg::Ago(d) => {
                let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
                Timestamp::from_unix_micros(now.unix_micros().saturating_sub(micros))
            }
        }
    }
}

impl FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeArg, String> {
        if let Ok(d) = parse_duration(s) {
            return Ok(TimeArg::Ago(d));
        }
        s.parse::<Timestamp>().map(TimeArg::At).map_err(|_| {
            format!(
                "{s:?} is neither an age like 15m, 24h, 7d nor an RFC 3339 time like 2026-11-22T10:15:30Z"
            )
        })
    }
}

/// Parses a duration as humantime writes it: `500ms`, `90s`, `15m`, `24h`, `7d`, `2w`,
/// `1h 30m`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 90s, 15m, 24h, 7d or 2w: {e}"))
}

/// A short human form of an age: `0s`, `42s`, `3m12s`, `5h02m`, `3d04h`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
        _ => format!("{}d{:02}h", s / 86_400, (s / 3600) % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_humantime_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        // A bare number has no unit: `--since 15` is refused, not read as seconds or days.
        for bad in ["", "m", "15", "-3d", "3 parsecs", "99999999999999999999d"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains("is not a duration like 500ms"), "{err}");
        }
    }

    #[test]
    fn time_args_are_ages_or_instants() {
        let now = Timestamp::from_unix_micros(10_000_000);
        let ago: TimeArg = "3s".parse().unwrap();
        assert_eq!(ago.resolve(now), Timestamp::from_unix_micros(7_000_000));
        let at: TimeArg = "2023-11-14T22:13:20Z".parse().unwrap();
        assert_eq!(
            at.resolve(now),
            Timestamp::from_unix_micros(1_700_000_000_000_000)
        );
        assert!("yesterday".parse::<TimeArg>().is_err());
    }

    #[test]
    fn ages_print_short() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(192)), "3m12s");
        assert_eq!(human(Duration::from_secs(5 * 3600 + 120)), "5h02m");
        assert_eq!(human(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3d04h");
    }
}
