//! Durations as operators write them: `30s`, `2.5s`, `500ms`, `5m`, `1h`, or bare seconds.

use std::time::Duration;

/// The longest duration any key accepts: a week. Longer ones are typing errors, and
/// accepting them let `3 × interval` and `now + cooldown` overflow (issue 12).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 86_400);

/// Parses `30s`, `2.5s`, `500ms`, `5m`, `1h` or bare seconds (`30`, `2.5`), at most
/// [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid =
        || format!("invalid duration {text:?} (use 30s, 2.5s, 500ms, 5m, 1h or bare seconds)");
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(invalid()),
    };
    let duration = Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| invalid())?;
    if duration > MAX_DURATION {
        return Err(format!(
            "duration {text:?} is longer than the maximum of {}",
            format_duration(MAX_DURATION)
        ));
    }
    Ok(duration)
}

/// Formats a duration the way [`parse_duration`] reads it: `30s`, `2.5s`, `5m`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds >= 60.0 && seconds % 60.0 == 0.0 {
        format!("{}m", seconds / 60.0)
    } else if seconds < 1.0 && seconds > 0.0 {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_forms() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "s", "-1s", "1d", "abc", "1.2.3s", "5 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    /// Regression (issue 12): `interval = "10000000000000000000"` was accepted, and every
    /// `/healthz` then panicked multiplying it.
    #[test]
    fn refuses_durations_over_a_week() {
        assert_eq!(parse_duration("168h"), Ok(MAX_DURATION));
        for long in ["10000000000000000000", "168.001h", "1e400", "604801"] {
            let error = parse_duration(long).unwrap_err();
            assert!(
                error.contains("longer than the maximum of") || error.contains("invalid"),
                "{long}: {error}"
            );
        }
        assert!(parse_duration("604801")
            .unwrap_err()
            .contains("maximum of 10080m"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["30s", "2.5s", "5m", "250ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
