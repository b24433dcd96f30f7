//! A UTC instant with millisecond precision. The domain never reads a clock;
//! callers pass time in.
//!
//! Calendar arithmetic and RFC 3339 parsing come from the `time` crate, not
//! from hand-written code: hand-written parsing once sliced by bytes (a
//! multibyte character panicked) and rolled `2026-02-31` into March. `time`
//! is the long-maintained standard for this (used by the AWS SDK itself, so
//! it adds no crate to the Lambda binaries); `jiff` is younger and brings
//! time-zone machinery the domain does not need. Only its `parsing` feature
//! is enabled: formatting the one fixed layout is a `write!`.
//!
//! Every [`Timestamp`] lies between 1970-01-01T00:00:00.000Z and
//! [`Timestamp::MAX`], so formatting it never fails and always re-parses to
//! the same value.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC. Serialised as RFC 3339 with
/// milliseconds (`2026-11-27T09:24:26.123Z`), the format EventBridge and
/// people read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The latest representable instant, `9999-12-31T23:59:59.999Z`: RFC 3339
    /// has four-digit years.
    pub const MAX: Self = Self(253_402_300_799_999);

    /// A timestamp `millis` milliseconds after the Unix epoch, saturating at
    /// [`Timestamp::MAX`].
    pub const fn from_unix_millis(millis: u64) -> Self {
        if millis > Self::MAX.0 {
            Self::MAX
        } else {
            Self(millis)
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`),
    /// converting an offset to UTC and truncating the fraction to
    /// milliseconds. Returns `None` (never panics) for anything else,
    /// including impossible dates and times (`2026-02-31`, hour 24), a
    /// separator other than `T`, and instants before 1970 or after
    /// [`Timestamp::MAX`]. A leap second (`23:59:60`, allowed by RFC 3339 at
    /// the end of a month) reads as the last millisecond before it.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        // `time` accepts any byte as the date/time separator; RFC 3339 says `T`.
        if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
            return None;
        }
        let instant = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        let millis = u64::try_from(instant.unix_timestamp_nanos() / 1_000_000).ok()?;
        (millis <= Self::MAX.0).then_some(Self(millis))
    }

    /// The UTC calendar date, `YYYY-MM-DD` (e.g. the key of a per-day quota).
    pub fn utc_date(&self) -> String {
        let t = self.to_datetime();
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
    }

    fn to_datetime(self) -> OffsetDateTime {
        // Every value is within `time`'s default range (years 1970..=9999, see
        // MAX), so the fallback is unreachable; it only avoids a panic path.
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_datetime();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            self.0 % 1000
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_with_millis() {
        assert_eq!(
            Timestamp::from_unix_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(1_795_771_466_123).to_string(),
            "2026-11-27T09:24:26.123Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn values_beyond_year_9999_saturate() {
        assert_eq!(Timestamp::from_unix_millis(u64::MAX), Timestamp::MAX);
        assert_eq!(
            Timestamp::parse_rfc3339(&Timestamp::from_unix_millis(u64::MAX).to_string()),
            Some(Timestamp::MAX)
        );
    }

    #[test]
    fn parses_what_it_writes_and_plain_seconds() {
        for millis in [0, 951_782_400_000, 1_795_771_466_123, 4_102_444_799_999] {
            let ts = Timestamp::from_unix_millis(millis);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_string()), Some(ts));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T09:24:26Z"),
            Some(Timestamp::from_unix_millis(1_795_771_466_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T09:24:26.5Z"),
            Some(Timestamp::from_unix_millis(1_795_771_466_500))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T09:24:26.123999999Z"),
            Some(Timestamp::from_unix_millis(1_795_771_466_123)),
            "sub-millisecond digits are truncated"
        );
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T10:24:26.123+01:00"),
            Timestamp::parse_rfc3339("2026-11-27T09:24:26.123Z")
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T09:24:26.123-00:00"),
            Some(Timestamp::from_unix_millis(1_795_771_466_123))
        );
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-02-31T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-32T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T23:60:00Z",
            "2026-11-27T23:59:61Z",
            "2026-11-27T12:59:60Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_some());
        assert_eq!(
            Timestamp::parse_rfc3339("2026-12-31T23:59:60Z").map(|t| t.to_string()),
            Some("2026-12-31T23:59:59.999Z".to_owned()),
            "a leap second reads as the millisecond before it"
        );
    }

    #[test]
    fn multibyte_characters_never_panic_and_are_refused() {
        for bad in [
            "2026-11-27T09:24:26.1€Z",
            "2026-11-27T09:24:26€",
            "2026-11-27€09:24:26Z",
            "€026-11-27T09:24:26Z",
            "2026-11-27T09:24:2€Z",
            "2026-11-27T09:24:26.😀Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "2026-11-27",
            "2026-11-27 09:24:26Z",
            "2026-11-27X09:24:26Z",
            "2026-11-27T09:24:26",
            "2026-11-27T09:24:26.Z",
            "2026-11-27T9:24:26Z",
            "2026-11-27T09:24:26+1:00",
            "x026-11-27T09:24:26Z",
            "+2026-11-27T09:24:26Z",
            "2026-11-27T09:24:26ZZ",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn utc_date_is_the_calendar_day_in_utc() {
        assert_eq!(
            Timestamp::from_unix_millis(1_795_771_466_123).utc_date(),
            "2026-11-27"
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-27T23:59:59.999Z")
                .map(|t| t.utc_date())
                .as_deref(),
            Some("2026-11-27")
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-28T00:30:00+01:00")
                .map(|t| t.utc_date())
                .as_deref(),
            Some("2026-11-27"),
            "the day is the UTC day, not the sender's"
        );
        assert_eq!(Timestamp::from_unix_millis(0).utc_date(), "1970-01-01");
    }
}
