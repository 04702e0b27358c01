//! `meta.v1.Time` (`{seconds, nanos}` since the Unix epoch) as the RFC 3339 string Go's JSON
//! encoder writes: `2006-01-02T15:04:05Z`, whole seconds, UTC.
//!
//! The calendar conversion is the proleptic Gregorian days-from-epoch arithmetic; only years
//! 0000–9999 can be written in RFC 3339, anything else is an error.

use super::ProtobufError;

const SECONDS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 (the start of the shifted calendar below) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

/// Civil date (year, month 1–12, day 1–31) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Years start on March 1st so that the leap day ends a year; 400-year eras repeat exactly.
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats seconds since the epoch as RFC 3339 in UTC (Go's `time.RFC3339` after `.UTC()`).
pub(crate) fn format_time(seconds: i64) -> Result<String, ProtobufError> {
    let days = seconds.div_euclid(SECONDS_PER_DAY);
    let secs_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(ProtobufError::Malformed(format!(
            "timestamp {seconds} is outside years 0000-9999"
        )));
    }
    let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"
    ))
}

/// Test helper: parses what [`format_time`] writes back into seconds since the epoch.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Option<i64> {
    if text.len() != 20 || !text.ends_with('Z') {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil, the inverse of `civil_from_days`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT;
    Some(days * SECONDS_PER_DAY + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn epoch_and_known_instants_format_like_go() {
        assert_eq!(format_time(0).as_deref(), Ok("1970-01-01T00:00:00Z"));
        // `date -u -d @1700000000` → Tue Nov 14 22:13:20 UTC 2023
        assert_eq!(
            format_time(1_700_000_000).as_deref(),
            Ok("2023-11-14T22:13:20Z")
        );
        // A leap day: `date -u -d 2024-02-29T12:00:00Z +%s` → 1709208000
        assert_eq!(
            format_time(1_709_208_000).as_deref(),
            Ok("2024-02-29T12:00:00Z")
        );
        assert_eq!(format_time(-1).as_deref(), Ok("1969-12-31T23:59:59Z"));
    }

    #[test]
    fn years_outside_0000_to_9999_are_rejected() {
        assert!(format_time(253_402_300_800).is_err()); // 10000-01-01T00:00:00Z
        assert_eq!(
            format_time(253_402_300_799).as_deref(),
            Ok("9999-12-31T23:59:59Z")
        );
        assert_eq!(
            format_time(-62_167_219_200).as_deref(),
            Ok("0000-01-01T00:00:00Z")
        );
        assert!(format_time(-62_167_219_201).is_err());
    }

    proptest! {
        #[test]
        fn formatting_then_parsing_gives_back_the_instant(
            seconds in -62_167_219_200i64..253_402_300_799
        ) {
            let text = format_time(seconds).unwrap();
            prop_assert_eq!(parse(&text), Some(seconds));
        }
    }
}
