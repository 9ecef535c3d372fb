//! Parsing of the human units used in flags and config: bitrates (`2800k`,
//! `5M`) and durations (`6`, `6s`, `1.5s`, `500ms`).

use std::fmt;

/// A bitrate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Bitrate(pub u64);

impl Bitrate {
    /// Parses `400k`, `5M`, `128000`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (digits, mult) = match t.char_indices().last() {
            Some((i, 'k' | 'K')) => (&t[..i], 1_000.0),
            Some((i, 'm' | 'M')) => (&t[..i], 1_000_000.0),
            _ => (t, 1.0),
        };
        let value: f64 = digits
            .parse()
            .map_err(|_| format!("`{text}` is not a bitrate (examples: 400k, 5M, 128000)"))?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("bitrate `{text}` must be positive"));
        }
        let bps = (value * mult).round() as u64;
        if bps < 8_000 {
            return Err(format!("bitrate `{text}` is below 8k"));
        }
        Ok(Bitrate(bps))
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1_000 == 0 {
            write!(f, "{}k", self.0 / 1_000)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Parses a duration in seconds: `6`, `6s`, `1.5s`, `500ms`, `2m`.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (digits, mult) = if let Some(d) = t.strip_suffix("ms") {
        (d, 0.001)
    } else if let Some(d) = t.strip_suffix('s') {
        (d, 1.0)
    } else if let Some(d) = t.strip_suffix('m') {
        (d, 60.0)
    } else if let Some(d) = t.strip_suffix('h') {
        (d, 3600.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 6, 6s, 500ms, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("duration `{text}` must not be negative"));
    }
    Ok(value * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_bitrates() {
        assert_eq!(Bitrate::parse("400k"), Ok(Bitrate(400_000)));
        assert_eq!(Bitrate::parse("5M"), Ok(Bitrate(5_000_000)));
        assert_eq!(Bitrate::parse("1.5M"), Ok(Bitrate(1_500_000)));
        assert_eq!(Bitrate::parse("128000"), Ok(Bitrate(128_000)));
        assert!(Bitrate::parse("fast").is_err());
        assert!(Bitrate::parse("0k").is_err());
        assert!(Bitrate::parse("-5k").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_seconds("6"), Ok(6.0));
        assert_eq!(parse_seconds("6s"), Ok(6.0));
        assert_eq!(parse_seconds("500ms"), Ok(0.5));
        assert_eq!(parse_seconds("2m"), Ok(120.0));
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-1").is_err());
    }

    proptest! {
        #[test]
        fn bitrate_display_round_trips(kbps in 8u64..10_000_000) {
            let b = Bitrate(kbps * 1000);
            prop_assert_eq!(Bitrate::parse(&b.to_string()), Ok(b));
        }
    }
}
