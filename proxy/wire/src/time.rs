//! Timestamps as Go's `time.Time` marshals them: RFC 3339 with nanoseconds, trailing zeros trimmed.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time that serializes like Go's `time.Time` (RFC3339Nano).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The current time in UTC (how Ollama stamps `created_at`).
    pub fn now_utc() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// From a `SystemTime` (e.g. a file's mtime), in UTC.
    pub fn from_system(t: std::time::SystemTime) -> Self {
        Timestamp(OffsetDateTime::from(t))
    }

    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> Self {
        Timestamp(
            time::Date::from_calendar_date(1, time::Month::January, 1)
                .map(|d| d.midnight().assume_utc())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        )
    }

    /// Unix seconds.
    pub fn unix(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// Render as Go's RFC3339Nano.
    pub fn to_rfc3339_nano(&self) -> String {
        let t = self.0;
        let (y, mo, d) = (t.year(), t.month() as u8, t.day());
        let (h, mi, s, ns) = (t.hour(), t.minute(), t.second(), t.nanosecond());
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if ns != 0 {
            let frac = format!("{ns:09}");
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        let off = t.offset();
        if off == UtcOffset::UTC {
            out.push('Z');
        } else {
            let secs = off.whole_seconds();
            let sign = if secs < 0 { '-' } else { '+' };
            let a = secs.abs();
            out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60));
        }
        out
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339_nano())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn trailing_zeros_are_trimmed_like_go() {
        let t = Timestamp(datetime!(2025-08-20 13:48:23.241046 UTC));
        assert_eq!(t.to_rfc3339_nano(), "2025-08-20T13:48:23.241046Z");
        let t = Timestamp(datetime!(2025-08-20 13:48:23 UTC));
        assert_eq!(t.to_rfc3339_nano(), "2025-08-20T13:48:23Z");
    }

    #[test]
    fn offsets_are_numeric() {
        let t = Timestamp(datetime!(2025-06-24 13:41:32.032308856 -04:00));
        assert_eq!(t.to_rfc3339_nano(), "2025-06-24T13:41:32.032308856-04:00");
    }

    #[test]
    fn round_trips_through_serde() {
        let t = Timestamp(datetime!(2024-01-02 03:04:05.5 UTC));
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(s, "\"2024-01-02T03:04:05.5Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&s).unwrap(), t);
    }
}
