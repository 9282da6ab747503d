//! XEP-0082 date-times: `2009-07-14T04:52:25.650Z` (offers' file dates). Pure
//! conversions between text and `SystemTime` values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as nanoseconds since the Unix epoch (negative before it).
pub fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

/// Formats `t` as an XEP-0082 date-time in UTC with milliseconds, e.g.
/// `2009-07-14T04:52:25.650Z` (sub-millisecond digits are truncated). Times outside
/// the years 0001–9999 are clamped to that range.
pub fn format_xep82(t: SystemTime) -> String {
    let min = time::macros::datetime!(0001-01-01 00:00:00 UTC).unix_timestamp_nanos();
    let max = time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC).unix_timestamp_nanos();
    let nanos = unix_nanos(t).clamp(min, max);
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Parses an XEP-0082 date-time such as `2009-07-14T04:52:25.650Z`,
/// `2009-07-14T04:52:25Z` or `2009-07-14T06:52:25+02:00` (any number of fractional
/// digits; `Z` or a `±hh:mm` offset). Surrounding whitespace is ignored. Returns
/// `None` for anything else.
pub fn parse_xep82(s: &str) -> Option<SystemTime> {
    let dt = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let secs = dt.unix_timestamp();
    let nanos = Duration::from_nanos(u64::from(dt.nanosecond()));
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2009-07-14T04:52:25Z in seconds since the Unix epoch.
    const SAMPLE_SECS: u64 = 1_247_547_145;

    #[test]
    fn xep82_parses_the_sample() {
        let expected = UNIX_EPOCH + Duration::from_millis(SAMPLE_SECS * 1000 + 650);
        assert_eq!(parse_xep82("2009-07-14T04:52:25.650Z"), Some(expected));
        assert_eq!(parse_xep82(" 2009-07-14T04:52:25.650Z\n"), Some(expected));
        assert_eq!(parse_xep82("2009-07-14T06:52:25.650+02:00"), Some(expected));
        assert_eq!(parse_xep82("2009-07-13T23:52:25.65-05:00"), Some(expected));
        assert_eq!(parse_xep82("2009-07-14T04:52:25Z"), Some(UNIX_EPOCH + Duration::from_secs(SAMPLE_SECS)));
        assert_eq!(parse_xep82("2009-07-14T04:52:25+00:00"), Some(UNIX_EPOCH + Duration::from_secs(SAMPLE_SECS)));
        assert_eq!(
            parse_xep82("2009-07-14T04:52:25.123456789Z"),
            Some(UNIX_EPOCH + Duration::new(SAMPLE_SECS, 123_456_789))
        );
    }

    #[test]
    fn xep82_rejects_malformed_dates() {
        for bad in ["", "garbage", "2009-07-14", "2009-07-14T04:52:25", "2009-07-14T04:52Z", "2009-13-14T04:52:25Z"] {
            assert_eq!(parse_xep82(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn xep82_formats_utc_with_milliseconds() {
        assert_eq!(format_xep82(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::new(SAMPLE_SECS, 650_999_999);
        assert_eq!(format_xep82(t), "2009-07-14T04:52:25.650Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_xep82(before), "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn xep82_round_trips() {
        for s in [
            "2009-07-14T04:52:25.650Z",
            "1969-12-31T23:59:59.500Z",
            "2024-02-29T12:00:00.001Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let t = parse_xep82(s).expect("parse");
            assert_eq!(format_xep82(t), s);
        }
        let now = SystemTime::now();
        let back = parse_xep82(&format_xep82(now)).expect("parse");
        let diff = now.duration_since(back).expect("not later");
        assert!(diff < Duration::from_millis(1));
    }
}
