//! [`Timestamp`]: RFC 3339 UTC with microsecond precision, without a date-time dependency.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with microsecond precision, serialized as RFC 3339 UTC
/// (`2026-11-22T10:15:30.123456Z`).
///
/// The range that RFC 3339 can write is [`Timestamp::MIN`] to [`Timestamp::MAX`] (years 0000 to
/// 9999); parsing refuses anything outside it with a [`TimestampError`], never a panic.
///
/// ```
/// use authtel_core::audit::Timestamp;
/// let t = Timestamp::from_unix_micros(1_700_000_000_123_456);
/// assert_eq!(t.to_string(), "2023-11-14T22:13:20.123456Z");
/// assert_eq!("2023-11-14T22:13:20.123456Z".parse::<Timestamp>().unwrap(), t);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The earliest timestamp RFC 3339 can write, `0000-01-01T00:00:00.000000Z`.
    ///
    /// ```
    /// use authtel_core::audit::Timestamp;
    /// assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000000Z");
    /// ```
    pub const MIN: Timestamp = Timestamp(-62_167_219_200_000_000);

    /// The latest timestamp RFC 3339 can write, `9999-12-31T23:59:59.999999Z`.
    ///
    /// ```
    /// use authtel_core::audit::Timestamp;
    /// assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
    /// ```
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);

    /// Now, from the wall clock.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }

    /// From microseconds since the Unix epoch.
    ///
    /// Values outside [`Timestamp::MIN`]..=[`Timestamp::MAX`] are kept, but their text form is
    /// not RFC 3339 and does not parse back.
    pub const fn from_unix_micros(micros: i64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_micros(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_micros(self.0.unsigned_abs())
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }
}

// Civil-from-days and days-from-civil (Howard Hinnant's algorithms), for RFC 3339 without
// a date-time dependency in core. `tests/timestamps_match_the_time_crate.rs` checks them
// against the `time` crate over the whole supported range.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

/// Why a timestamp did not parse: the input (its first 64 bytes) and what is wrong with it.
///
/// ```
/// use authtel_core::audit::Timestamp;
/// let err = "2026-02-30T00:00:00Z".parse::<Timestamp>().unwrap_err();
/// assert!(err.to_string().contains("day"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {input:?} is not RFC 3339 like \"2026-11-22T10:15:30.123456Z\": {reason}")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    /// Parses RFC 3339 (`T` or `t` between date and time, `Z`, `z` or `±hh:mm` after it).
    /// Fraction digits past the sixth are truncated; a leap second (`23:59:60` UTC on the last
    /// day of a month) becomes the microsecond before the next minute, as the `time` crate does.
    fn from_str(s: &str) -> Result<Timestamp, TimestampError> {
        let err = |reason| TimestampError {
            input: crate::metadata::truncate(s, 64).to_owned(),
            reason,
        };
        // Everything is read byte by byte, so no input can split a character.
        let b = s.as_bytes();
        let digits = |at: usize, n: usize, what: &'static str| -> Result<i64, TimestampError> {
            let part = b.get(at..at + n).ok_or_else(|| err(what))?;
            part.iter().try_fold(0i64, |acc, &c| match c {
                b'0'..=b'9' => Ok(acc * 10 + i64::from(c - b'0')),
                _ => Err(err(what)),
            })
        };
        let literal = |at: usize, want: &[u8], what: &'static str| match b.get(at) {
            Some(c) if want.contains(c) => Ok(()),
            _ => Err(err(what)),
        };
        let y = digits(0, 4, "the year is not four digits")?;
        literal(4, b"-", "no '-' after the year")?;
        let mo = digits(5, 2, "the month is not two digits")?;
        literal(7, b"-", "no '-' after the month")?;
        let d = digits(8, 2, "the day is not two digits")?;
        literal(10, b"Tt", "no 'T' between date and time")?;
        let h = digits(11, 2, "the hour is not two digits")?;
        literal(13, b":", "no ':' after the hour")?;
        let mi = digits(14, 2, "the minute is not two digits")?;
        literal(16, b":", "no ':' after the minute")?;
        let mut se = digits(17, 2, "the second is not two digits")?;
        if !(1..=12).contains(&mo) {
            return Err(err("the month is not 01 to 12"));
        }
        let (mo, d_u32) = (mo as u32, d as u32);
        if d == 0 || d_u32 > days_in_month(y, mo) {
            return Err(err("the day is not in that month"));
        }
        if h > 23 || mi > 59 || se > 60 {
            return Err(err("the time of day is out of range"));
        }
        let mut at = 19;
        let mut micros = 0i64;
        if b.get(at) == Some(&b'.') {
            let n = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return Err(err("no digits after the '.'"));
            }
            let mut scale = 100_000i64;
            for &c in b[at + 1..at + 1 + n].iter().take(6) {
                micros += i64::from(c - b'0') * scale;
                scale /= 10;
            }
            at += 1 + n;
        }
        let offset_secs = match b.get(at) {
            Some(b'Z' | b'z') if b.len() == at + 1 => 0,
            Some(&sign @ (b'+' | b'-')) if b.len() == at + 6 => {
                let oh = digits(at + 1, 2, "the offset hour is not two digits")?;
                literal(at + 3, b":", "no ':' in the offset")?;
                let om = digits(at + 4, 2, "the offset minute is not two digits")?;
                if oh > 23 || om > 59 {
                    return Err(err("the offset is out of range"));
                }
                let secs = oh * 3600 + om * 60;
                if sign == b'-' { -secs } else { secs }
            }
            _ => return Err(err("it does not end in 'Z' or an offset like '+01:00'")),
        };
        let leap = se == 60;
        if leap {
            se = 59;
            micros = 999_999;
        }
        let days = days_from_civil(y, mo, d_u32);
        let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_secs;
        let t = Timestamp(secs * 1_000_000 + micros);
        if leap {
            let (ly, lm, ld) = civil_from_days(secs.div_euclid(86_400));
            if secs.rem_euclid(86_400) != 86_399 || ld != days_in_month(ly, lm) {
                return Err(err(
                    "a leap second is only 23:59:60 UTC on a month's last day",
                ));
            }
        }
        if !(Timestamp::MIN..=Timestamp::MAX).contains(&t) {
            return Err(err("it is outside years 0000 to 9999 in UTC"));
        }
        Ok(t)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for micros in [
            0,
            1,
            -1,
            951_782_400_000_000,
            4_102_444_799_999_999,
            -62_135_596_800_000_000,
        ] {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t, "{t}");
        }
        assert_eq!(
            "2026-11-22T10:00:00+01:00"
                .parse::<Timestamp>()
                .unwrap()
                .to_string(),
            "2026-11-22T09:00:00.000000Z"
        );
        assert!("2026-13-01T00:00:00Z".parse::<Timestamp>().is_err());
        assert!("garbage".parse::<Timestamp>().is_err());
    }
}
