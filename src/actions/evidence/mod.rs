//! Actions that collect evidence: reads run when the run executes, whose results are stored
//! with their sha256.

pub mod activity_log;
pub mod log_analytics_query;

use chrono::Duration;

use super::ActionError;

/// The window evidence actions look back over unless a step says otherwise.
pub const DEFAULT_TIMESPAN: &str = "P30D";

pub fn default_timespan() -> String {
    DEFAULT_TIMESPAN.to_string()
}

/// Parses an ISO 8601 duration made of weeks, days, hours, minutes and seconds (`P30D`,
/// `PT12H`, `P1DT6H`, `PT90M`). Years and months are refused: their length depends on the
/// calendar, and a plan must say exactly which window it reads.
pub fn parse_timespan(text: &str) -> Result<Duration, ActionError> {
    let bad = |why: &str| {
        ActionError::Params(format!(
            "timespan `{text}` {why}; use an ISO 8601 duration such as P30D, PT12H or P1DT6H"
        ))
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| bad("does not start with P"))?;
    let mut total = Duration::zero();
    let mut in_time = false;
    let mut number = String::new();
    let mut parts = 0;
    let mut time_parts = 0;
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' if !in_time && number.is_empty() => in_time = true,
            unit => {
                let n: i64 = number
                    .parse()
                    .map_err(|_| bad("has a unit without a number"))?;
                number.clear();
                let part = match (in_time, unit) {
                    (false, 'W') => Duration::try_weeks(n),
                    (false, 'D') => Duration::try_days(n),
                    (true, 'H') => Duration::try_hours(n),
                    (true, 'M') => Duration::try_minutes(n),
                    (true, 'S') => Duration::try_seconds(n),
                    (false, 'Y' | 'M') => return Err(bad("uses years or months")),
                    _ => return Err(bad(&format!("has an unexpected `{unit}`"))),
                }
                .ok_or_else(|| bad("is too long"))?;
                total = total.checked_add(&part).ok_or_else(|| bad("is too long"))?;
                parts += 1;
                time_parts += usize::from(in_time);
            }
        }
    }
    if !number.is_empty() {
        return Err(bad("ends with a number without a unit"));
    }
    if in_time && time_parts == 0 {
        return Err(bad("has a T with no hours, minutes or seconds after it"));
    }
    if parts == 0 || total <= Duration::zero() {
        return Err(bad("is empty"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_timespan("P30D").unwrap(), Duration::days(30));
        assert_eq!(parse_timespan("PT12H").unwrap(), Duration::hours(12));
        assert_eq!(
            parse_timespan("P1DT6H30M").unwrap(),
            Duration::hours(30) + Duration::minutes(30)
        );
        assert_eq!(parse_timespan("P2W").unwrap(), Duration::days(14));
        for bad in [
            "30D",
            "P",
            "PT",
            "P1M",
            "P1Y",
            "P0D",
            "PT5",
            "P1H",
            "PD",
            "P99999999999999D",
            "P1DT",
        ] {
            assert!(parse_timespan(bad).is_err(), "{bad}");
        }
    }
}
