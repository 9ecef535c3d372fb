//! Parsing of the human units used in flags, environment and config, in one
//! place for every subcommand: durations (`6`, `1.5s`, `500ms`, `2m30s`,
//! `1h 2m`, `7d`), sizes (`1048576`, `8MB`, `8MiB`, `1.5GiB`) and bitrates
//! (`2800k`, `5M`).
//!
//! Durations go to `humantime`, which reads compound spans and fractions
//! (`1.5s`) exactly; around it we only read a plain number as seconds (it
//! demands a unit) and refuse a sign with a clear message.
//! Sizes take their units from `bytesize` (SI `kB`/`MB`/`GB` are powers of
//! ten, IEC `KiB`/`MiB`/`GiB` powers of two, any case); the number is read
//! here so fractions round to the nearest byte and overflow is an error
//! (its own parser truncates `1.001kB` to 1000 and saturates on overflow).
//! Bitrates are SI `k`/`M` with no crate: one suffix, nothing to share.

use std::fmt;
use std::num::IntErrorKind;
use std::time::Duration;

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

/// Forms a duration may take, quoted in every duration error.
const DURATION_EXAMPLES: &str = "examples: 6, 1.5, 1.5s, 500ms, 90s, 2m30s, 1h 2m, 7d";

/// Forms a size may take, quoted in every size error.
const SIZE_EXAMPLES: &str = "examples: 1048576, 512KiB, 8MiB, 8MB, 1.5GiB, 5GB";

/// A duration as written: a plain number of seconds, or a span with units.
enum Written {
    /// A plain number (`6`, `1.5`), kept as written so callers wanting
    /// seconds get exactly that number back.
    Seconds(f64),
    /// A span with units (`1h2m`, `1.5s`), exact to the nanosecond.
    Span(Duration),
}

/// Reads a duration: plain numbers are seconds, anything else goes to
/// `humantime` (units ns, us, ms, s, m/min, h, d, w, and compounds).
fn read_duration(text: &str) -> Result<Written, String> {
    let t = text.trim();
    if let Ok(seconds) = t.parse::<f64>() {
        return match seconds {
            s if s.is_nan() || s.is_infinite() => {
                Err(format!("`{text}` is not a duration ({DURATION_EXAMPLES})"))
            }
            s if s < 0.0 => Err(negative_duration(text)),
            s => Ok(Written::Seconds(s)),
        };
    }
    if t.starts_with('-') {
        return Err(negative_duration(text));
    }
    humantime::parse_duration(t)
        .map(Written::Span)
        .map_err(|e| format!("`{text}` is not a duration: {e} ({DURATION_EXAMPLES})"))
}

fn negative_duration(text: &str) -> String {
    format!("duration `{text}` must not be negative ({DURATION_EXAMPLES})")
}

/// Parses a duration: a plain number of seconds (`6`, `1.5`, `0.25`) or
/// spans with units `ms`, `s`, `m`/`min`, `h`, `d`, alone or combined
/// (`500ms`, `1.5s`, `90s`, `2m30s`, `1h2m`, `1h 2m`, `7d`). Negative
/// values are errors.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match read_duration(text)? {
        Written::Seconds(s) => Duration::try_from_secs_f64(s)
            .map_err(|_| format!("duration `{text}` is too long ({DURATION_EXAMPLES})")),
        Written::Span(d) => Ok(d),
    }
}

/// Parses a duration like [`parse_duration`] and gives it in seconds; a
/// plain number comes back exactly as written.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    Ok(match read_duration(text)? {
        Written::Seconds(s) => s,
        Written::Span(d) => d.as_secs_f64(),
    })
}

/// Parses a size in bytes: a plain count (`1048576`), SI units (`8k`,
/// `8kB`, `8MB`, `5GB`: powers of 1000) or IEC units (`512KiB`, `8MiB`,
/// `5GiB`: powers of 1024), in any case, with an optional space; a unit
/// may take a fraction (`1.5GiB`, rounded to the nearest byte).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "size `{text}` must not be negative ({SIZE_EXAMPLES})"
        ));
    }
    let not_a_size = || format!("`{text}` is not a size ({SIZE_EXAMPLES})");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor = match unit.trim_start() {
        "" => 1,
        unit => {
            let unit: bytesize::Unit = unit
                .parse()
                .map_err(|_| format!("`{text}`: unknown size unit `{unit}` ({SIZE_EXAMPLES})"))?;
            unit * 1u64
        }
    };
    let bytes = match number.parse::<u64>() {
        Ok(whole) => whole.checked_mul(factor),
        Err(e) if *e.kind() == IntErrorKind::PosOverflow => None,
        // A byte count is whole; fractions need a unit to scale.
        Err(_) if factor == 1 => return Err(not_a_size()),
        Err(_) => {
            let value: f64 = number.parse().map_err(|_| not_a_size())?;
            let bytes = (value * factor as f64).round();
            // u64::MAX as f64 rounds up to 2^64, itself out of range.
            (bytes < u64::MAX as f64).then_some(bytes as u64)
        }
    };
    bytes.ok_or_else(|| format!("size `{text}` is too large ({SIZE_EXAMPLES})"))
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

    #[test]
    fn accepts_every_documented_duration_form() {
        let ms = Duration::from_millis;
        let table = [
            ("6", ms(6_000)),
            ("1.5", ms(1_500)),
            ("0.25", ms(250)),
            (" 6 ", ms(6_000)),
            ("0", Duration::ZERO),
            ("500ms", ms(500)),
            ("1.5s", ms(1_500)),
            ("0.1s", ms(100)),
            ("6 s", ms(6_000)),
            ("90s", ms(90_000)),
            ("2m", ms(120_000)),
            ("2min", ms(120_000)),
            ("1.5m", ms(90_000)),
            ("2m30s", ms(150_000)),
            ("1h", ms(3_600_000)),
            ("1h2m", ms(3_720_000)),
            ("1h 2m", ms(3_720_000)),
            ("1h2m3s500ms", ms(3_723_500)),
            ("7d", ms(7 * 86_400_000)),
            ("1d 12h", ms(36 * 3_600_000)),
        ];
        for (text, want) in table {
            assert_eq!(parse_duration(text), Ok(want), "parse_duration({text:?})");
            assert_eq!(
                parse_seconds(text),
                Ok(want.as_secs_f64()),
                "parse_seconds({text:?})"
            );
        }
    }

    #[test]
    fn rejects_malformed_and_negative_durations_with_examples() {
        for text in [
            "", "soon", "6x", "1h2", "h", "1..5s", "1.s", "inf", "NaN", "-1", "-1s", "-1h 2m",
            "1h -2m", "1e400",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains("examples: 6, 1.5"), "{text:?}: {err}");
            let err = parse_seconds(text).expect_err(text);
            assert!(err.contains("examples: 6, 1.5"), "{text:?}: {err}");
        }
        assert!(parse_duration("-1s")
            .expect_err("negative")
            .contains("must not be negative"));
    }

    #[test]
    fn plain_seconds_come_back_exactly_as_written() {
        assert_eq!(parse_seconds("95.5"), Ok(95.5));
        assert_eq!(parse_seconds("0.1"), Ok(0.1));
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("5 GiB"), Ok(5 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3parsecs").is_err());
    }

    #[test]
    fn accepts_si_and_iec_sizes_in_any_case() {
        let table = [
            ("1048576", 1_048_576),
            ("0", 0),
            ("8k", 8_000),
            ("8kB", 8_000),
            ("8KB", 8_000),
            ("8MB", 8_000_000),
            ("8mb", 8_000_000),
            ("5GB", 5_000_000_000),
            ("512KiB", 512 * 1024),
            ("8MiB", 8_388_608),
            ("8mib", 8_388_608),
            ("8 MiB", 8_388_608),
            (" 5 GiB ", 5 << 30),
            ("5GiB", 5 << 30),
            ("1.5GiB", 3 << 29),
            ("1.001kB", 1_001),
            ("0.5KiB", 512),
            ("10B", 10),
        ];
        for (text, want) in table {
            assert_eq!(parse_size(text), Ok(want), "parse_size({text:?})");
        }
    }

    #[test]
    fn rejects_malformed_negative_and_overflowing_sizes_with_examples() {
        for text in [
            "",
            "lots",
            "3parsecs",
            "MiB",
            "1.5",
            "1.5B",
            "1..5MiB",
            "-5MiB",
            "-1",
            "8 M iB",
            "16EiB",
            "20000000000GB",
            "99999999999999999999",
            "20000000000.5GB",
        ] {
            let err = parse_size(text).expect_err(text);
            assert!(err.contains("examples: 1048576"), "{text:?}: {err}");
        }
    }

    /// Writes `text` in a random mix of upper and lower case.
    fn recase(text: &str, upper: &[bool]) -> String {
        text.chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }

    const SIZE_UNITS: [(&str, u64); 9] = [
        ("", 1),
        ("B", 1),
        ("k", 1_000),
        ("kB", 1_000),
        ("MB", 1_000_000),
        ("GB", 1_000_000_000),
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
    ];

    proptest! {
        #[test]
        fn bitrate_display_round_trips(kbps in 8u64..10_000_000) {
            let b = Bitrate(kbps * 1000);
            prop_assert_eq!(Bitrate::parse(&b.to_string()), Ok(b));
        }

        #[test]
        fn formatted_durations_parse_back(secs in 0u64..10_000_000_000, nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            prop_assert_eq!(parse_duration(&humantime::format_duration(d).to_string()), Ok(d));
        }

        #[test]
        fn plain_seconds_parse_back(millis in 0u64..100_000_000) {
            let secs = millis as f64 / 1000.0;
            prop_assert_eq!(parse_seconds(&secs.to_string()), Ok(secs));
            prop_assert_eq!(parse_duration(&format!("{secs}s")), Ok(Duration::from_millis(millis)));
        }

        #[test]
        fn compound_durations_sum_their_parts(
            d in 0u64..8, h in 0u64..24, m in 0u64..60, s in 0u64..60, ms in 0u64..1000,
            spaced in any::<bool>(),
        ) {
            let sep = if spaced { " " } else { "" };
            let text = format!("{d}d{sep}{h}h{sep}{m}m{sep}{s}s{sep}{ms}ms");
            let want = Duration::from_millis((((d * 24 + h) * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse_duration(&text), Ok(want));
        }

        #[test]
        fn formatted_sizes_parse_back(
            count in 0u64..1_000_000,
            unit in 0..SIZE_UNITS.len(),
            spaced in any::<bool>(),
            upper in proptest::collection::vec(any::<bool>(), 3),
        ) {
            let (name, factor) = SIZE_UNITS[unit];
            let sep = if spaced && !name.is_empty() { " " } else { "" };
            let text = format!("{count}{sep}{}", recase(name, &upper));
            prop_assert_eq!(parse_size(&text), Ok(count * factor));
        }

        #[test]
        fn fractional_sizes_round_to_the_nearest_byte(
            thousandths in 0u64..10_000_000,
            unit in 0..SIZE_UNITS.len(),
        ) {
            let (name, factor) = SIZE_UNITS[unit];
            prop_assume!(factor > 1);
            let text = format!("{}.{:03}{name}", thousandths / 1000, thousandths % 1000);
            let want = (thousandths * factor + 500) / 1000;
            prop_assert_eq!(parse_size(&text), Ok(want));
        }
    }
}
