//! `Timestamp`'s hand-written RFC 3339 code never panics and agrees with the `time` crate:
//! formatting over the whole supported range (years 0000 to 9999), parsing of every shape
//! RFC 3339 allows (offsets, fractions of any length, leap seconds, impossible dates), and
//! arbitrary strings, which it refuses with a typed error unless `time` reads the same instant.

use authtel_core::audit::Timestamp;
use proptest::prelude::*;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the `time` crate reads from `s`, in microseconds (rounded down, as `Timestamp` keeps
/// only six fraction digits), if it is in `Timestamp`'s range.
fn time_reads(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let micros = i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).ok()?;
    let range = Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros();
    range.contains(&micros).then_some(micros)
}

#[test]
fn non_ascii_input_is_a_typed_error_not_a_panic() {
    // Each of these used to slice a character in half (a panic, so a crash-looping consumer).
    for s in [
        "2026-11-22T10:00:00+0é00",
        "2026-11-22T10:00:00+é:00",
        "2026-11-22T10:00:00.1é",
        "2026-11-22T10:00:0é",
        "2026-11-22Té0:00:00Z",
        "é026-11-22T10:00:00Z",
        "2026-11-22T10:00:00+01:0é",
    ] {
        let parsed = std::panic::catch_unwind(|| s.parse::<Timestamp>());
        let err = parsed
            .unwrap_or_else(|_| panic!("parsing {s:?} panicked"))
            .unwrap_err();
        assert!(err.to_string().contains("is not RFC 3339"), "{err}");
        let json = format!("\"{s}\"");
        assert!(serde_json::from_str::<Timestamp>(&json).is_err(), "{json}");
    }
}

#[test]
fn impossible_dates_and_out_of_range_instants_are_refused() {
    for (s, reason) in [
        ("2026-02-29T00:00:00Z", "day"),
        ("2026-04-31T00:00:00Z", "day"),
        ("2026-11-22T10:00:00+24:00", "offset"),
        ("2026-11-22T10:00:00+01:60", "offset"),
        ("2026-11-22T10:00:60Z", "leap second"),
        ("9999-12-31T23:59:59-00:01", "outside years"),
        ("0000-01-01T00:00:00+00:01", "outside years"),
        ("2026-11-22 10:00:00Z", "'T'"),
        ("2026-11-22T10-00:00Z", "':'"),
        ("+026-11-22T10:00:00Z", "year"),
        ("2026-11-22T10:00:00.Z", "digits"),
        ("2026-11-22T10:00:00Zjunk", "'Z'"),
    ] {
        let err = s.parse::<Timestamp>().unwrap_err();
        assert!(err.to_string().contains(reason), "{s}: {err}");
    }
    assert_eq!(
        "2024-02-29T12:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_string(),
        "2024-02-29T12:00:00.000000Z"
    );
    assert_eq!(
        "2016-12-31T23:59:60Z"
            .parse::<Timestamp>()
            .unwrap()
            .to_string(),
        "2016-12-31T23:59:59.999999Z"
    );
    assert_eq!(
        "9999-12-31T23:59:59.9999999Z".parse::<Timestamp>().unwrap(),
        Timestamp::MAX
    );
    assert_eq!(
        "0000-01-01T01:00:00+01:00".parse::<Timestamp>().unwrap(),
        Timestamp::MIN
    );
}

/// An RFC 3339 string assembled from random parts, most valid, some just out of range.
fn rfc3339_parts() -> impl Strategy<Value = String> {
    (
        (0u32..=9999, 1u32..=12, 1u32..=31),
        (
            0u32..=23,
            0u32..=59,
            prop_oneof![9 => 0u32..=59, 1 => Just(60u32)],
        ),
        proptest::option::of("[0-9]{1,12}"),
        prop_oneof![
            Just("Z".to_owned()),
            Just("z".to_owned()),
            (any::<bool>(), 0u32..=23, 0u32..=59)
                .prop_map(|(neg, h, m)| format!("{}{h:02}:{m:02}", if neg { '-' } else { '+' })),
        ],
        prop_oneof![Just('T'), Just('t')],
    )
        .prop_map(|((y, mo, d), (h, mi, s), frac, offset, sep)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{offset}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn formatting_matches_the_time_crate(
        micros in Timestamp::MIN.unix_micros()..=Timestamp::MAX.unix_micros()
    ) {
        let ours = Timestamp::from_unix_micros(micros).to_string();
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
        let format = time::format_description::parse_borrowed::<1>(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z",
        )
        .unwrap();
        prop_assert_eq!(&ours, &t.format(&format).unwrap());
        prop_assert_eq!(ours.parse::<Timestamp>().unwrap().unix_micros(), micros);
    }

    #[test]
    fn parsing_matches_the_time_crate(s in rfc3339_parts()) {
        let ours = s.parse::<Timestamp>().ok().map(Timestamp::unix_micros);
        prop_assert_eq!(ours, time_reads(&s), "{}", s);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let ours = s.parse::<Timestamp>();
        if let Ok(t) = ours {
            prop_assert_eq!(Some(t.unix_micros()), time_reads(&s));
        }
    }

    #[test]
    fn damaged_timestamps_never_panic(
        s in rfc3339_parts(),
        at in any::<prop::sample::Index>(),
        with in any::<char>(),
    ) {
        // Replace one character of a valid timestamp, often with a multi-byte one.
        let mut chars: Vec<char> = s.chars().collect();
        let i = at.index(chars.len());
        chars[i] = with;
        let damaged: String = chars.into_iter().collect();
        if let Ok(t) = damaged.parse::<Timestamp>() {
            prop_assert_eq!(Some(t.unix_micros()), time_reads(&damaged), "{}", damaged);
        }
    }
}
