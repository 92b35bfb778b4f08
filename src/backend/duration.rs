//! Go-style durations as Kubernetes users write them (`30s`, `5m`, `1h30m`, `1.5h`, `500ms`, `0`).
//!
//! Owns: parsing `spec.validation.interval` and `spec.validation.timeout`. `humantime` was
//! considered and rejected: it does not accept fractions (`1.5h`) and spells units differently
//! from Go (`us`/`µs`), so a value the CRD schema admits could fail here. The accepted grammar is
//! exactly the schema's pattern (`api::backend::DURATION_PATTERN`): no sign, no spaces.
//!
//! Must not: know anything about backends; it is a pure parser.

use std::time::Duration;

/// Why a duration string was rejected. The message names the problem, never a guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("duration {0:?} is missing a unit (ns, us, ms, s, m, h)")]
    MissingUnit(String),
    #[error("duration {0:?} has an unknown unit")]
    UnknownUnit(String),
    #[error("duration {0:?} is not a number followed by a unit")]
    Malformed(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Units, longest spelling first so that `ms` is not read as `m` followed by garbage.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
];

/// Parses a Go duration. `0` (without unit) is zero; every other value needs units.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let malformed = || DurationError::Malformed(text.to_owned());
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_number) = match after_int.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return Err(malformed());
                }
                f.split_at(n)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() {
            return Err(malformed());
        }
        if after_number.is_empty() {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        let (unit, scale) = UNITS
            .iter()
            .filter(|(u, _)| after_number.starts_with(u))
            .max_by_key(|(u, _)| u.len())
            .ok_or_else(|| DurationError::UnknownUnit(text.to_owned()))?;
        let overflow = || DurationError::Overflow(text.to_owned());
        let whole: u128 = int_part.parse().map_err(|_| overflow())?;
        let mut nanos = whole.checked_mul(*scale).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // Keep at most 18 fraction digits: finer than a nanosecond of an hour anyway.
            let digits = &frac_part[..frac_part.len().min(18)];
            let numerator: u128 = digits.parse().map_err(|_| malformed())?;
            let denominator = 10u128.pow(digits.len() as u32);
            nanos = nanos
                .checked_add(numerator * scale / denominator)
                .ok_or_else(overflow)?;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(overflow)?;
        rest = &after_number[unit.len()..];
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(text.to_owned()))?;
    Ok(Duration::new(secs, (total_nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_writes_them() {
        let cases: &[(&str, &str, Duration)] = &[
            ("a bare zero is zero", "0", Duration::ZERO),
            ("zero seconds is zero", "0s", Duration::ZERO),
            ("seconds parse", "30s", Duration::from_secs(30)),
            ("minutes parse", "5m", Duration::from_secs(300)),
            (
                "hours and minutes combine",
                "1h30m",
                Duration::from_secs(5400),
            ),
            (
                "milliseconds are not minutes",
                "500ms",
                Duration::from_millis(500),
            ),
            (
                "microseconds parse with us",
                "250us",
                Duration::from_micros(250),
            ),
            (
                "microseconds parse with µs",
                "250µs",
                Duration::from_micros(250),
            ),
            ("nanoseconds parse", "7ns", Duration::from_nanos(7)),
            ("fractions parse", "1.5h", Duration::from_secs(5400)),
            (
                "fractions of seconds parse",
                "0.25s",
                Duration::from_millis(250),
            ),
            (
                "units may repeat as Go allows",
                "1m1m",
                Duration::from_secs(120),
            ),
            (
                "minutes then milliseconds combine",
                "1m500ms",
                Duration::from_millis(60_500),
            ),
        ];
        for (name, input, want) in cases {
            assert_eq!(parse(input).as_ref(), Ok(want), "{name}");
        }
    }

    #[test]
    fn malformed_durations_are_rejected_with_a_reason() {
        type Case = (&'static str, &'static str, fn(&DurationError) -> bool);
        let cases: &[Case] = &[
            ("the empty string is rejected", "", |e| {
                matches!(e, DurationError::Empty)
            }),
            ("a number without unit is rejected", "30", |e| {
                matches!(e, DurationError::MissingUnit(_))
            }),
            ("an unknown unit is rejected", "3d", |e| {
                matches!(e, DurationError::UnknownUnit(_))
            }),
            ("a negative duration is rejected", "-5s", |e| {
                matches!(e, DurationError::Malformed(_))
            }),
            ("spaces are rejected", "1h 30m", |e| {
                matches!(e, DurationError::Malformed(_))
            }),
            ("a dangling dot is rejected", "1.s", |e| {
                matches!(e, DurationError::Malformed(_))
            }),
            ("a unit without number is rejected", "h", |e| {
                matches!(e, DurationError::Malformed(_))
            }),
            (
                "an absurdly long duration is rejected",
                "99999999999999999999999999999999999999h",
                |e| matches!(e, DurationError::Overflow(_)),
            ),
        ];
        for (name, input, check) in cases {
            let err = parse(input).expect_err(name);
            assert!(check(&err), "{name}: got {err:?}");
        }
    }
}
