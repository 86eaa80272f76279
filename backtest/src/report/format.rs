//! Deterministic text formatting shared by the CSV files, the JSON summary,
//! the terminal table and the HTML report.
//!
//! Every output of a run must be byte-identical for identical inputs, so
//! nothing here depends on the locale, the clock or float printing modes that
//! could change between runs.

use std::fmt;
use std::io::{self, Write};

use chrono::{Datelike, Timelike};
use engine::model::Timestamp;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Formats a UTC timestamp as RFC 3339 with a `Z` suffix
/// (`2024-01-02T05:00:00Z`), with fractional seconds only when present
/// (3, 6 or 9 digits), exactly like chrono's
/// `to_rfc3339_opts(SecondsFormat::AutoSi, true)` but without allocating: it
/// is written once per equity row.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub Timestamp);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0.naive_utc();
        let nanos = t.nanosecond();
        if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
            // Out-of-range years and leap seconds are rare enough to take
            // chrono's allocating path.
            return f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )?;
        // Remainders named rather than `is_multiple_of`, which is newer
        // than the workspace's minimum Rust version.
        let (sub_ms, sub_us) = (nanos % 1_000_000, nanos % 1_000);
        if nanos == 0 {
        } else if sub_ms == 0 {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        } else if sub_us == 0 {
            write!(f, ".{:06}", nanos / 1_000)?;
        } else {
            write!(f, ".{nanos:09}")?;
        }
        f.write_str("Z")
    }
}

/// A Decimal printed without trailing zeros and never as `-0`: `100.50`
/// prints `100.5`, so two runs that reach the same value through different
/// scales print the same bytes.
#[derive(Debug, Clone, Copy)]
pub struct Norm(pub Decimal);

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

/// Writes `d` exactly as [`Norm`] displays it, without going through
/// `fmt`: `equity.csv` prints one Decimal per row, and this is several
/// times cheaper than `Display` for the usual mantissas (up to 64 bits;
/// larger ones take the `Display` path).
pub fn write_decimal(out: &mut impl Write, d: Decimal) -> io::Result<()> {
    let m = d.mantissa();
    let Ok(mut u) = u64::try_from(m.unsigned_abs()) else {
        return write!(out, "{}", Norm(d));
    };
    if u == 0 {
        return out.write_all(b"0");
    }
    let mut scale = d.scale() as usize;
    while scale > 0 && u % 10 == 0 {
        u /= 10;
        scale -= 1;
    }
    // Digits least significant first, padded so there is one before the
    // decimal point.
    let mut digits = [0u8; 32];
    let mut n = 0;
    while u > 0 {
        digits[n] = b'0' + (u % 10) as u8;
        u /= 10;
        n += 1;
    }
    while n < scale + 1 {
        digits[n] = b'0';
        n += 1;
    }
    let mut buf = [0u8; 40];
    let mut len = 0;
    if m < 0 {
        buf[0] = b'-';
        len = 1;
    }
    for k in (0..n).rev() {
        if scale > 0 && k + 1 == scale {
            buf[len] = b'.';
            len += 1;
        }
        buf[len] = digits[k];
        len += 1;
    }
    out.write_all(&buf[..len])
}

/// Writes a non-negative fraction rounded half away from zero to 6
/// decimal places, trailing zeros removed (`0.045455`, `0.1`, `0`), like
/// [`write_decimal`] of the same value rounded in Decimal.
pub fn write_fraction6(out: &mut impl Write, x: f64) -> io::Result<()> {
    let micro = (x * 1e6).round();
    if !(micro.is_finite() && micro.abs() < 9.0e18) {
        return out.write_all(b"NaN");
    }
    write_decimal(out, Decimal::new(micro as i64, 6))
}

/// RFC 3339 writer for `equity.csv` rows: caches the date part of the
/// current UTC day, so a row costs a few integer divisions instead of a
/// calendar conversion and a dozen `fmt` calls. Output is identical to
/// [`Rfc3339`].
#[derive(Debug, Clone)]
pub struct TimeWriter {
    day: i64,
    /// `YYYY-MM-DDT` of `day`, or `None` when that year has no 4-digit form.
    date: Option<[u8; 11]>,
}

impl Default for TimeWriter {
    fn default() -> Self {
        TimeWriter {
            day: i64::MIN,
            date: None,
        }
    }
}

impl TimeWriter {
    /// Write `t` as RFC 3339 UTC with a `Z`, exactly as [`Rfc3339`] does.
    pub fn write(&mut self, out: &mut impl Write, t: Timestamp) -> io::Result<()> {
        let secs = t.timestamp();
        let day = secs.div_euclid(86_400);
        if day != self.day {
            self.day = day;
            let date = t.date_naive();
            self.date = (0..=9999).contains(&date.year()).then(|| {
                let mut b = *b"0000-00-00T";
                let y = date.year() as u32;
                b[0] = b'0' + (y / 1000) as u8;
                b[1] = b'0' + (y / 100 % 10) as u8;
                b[2] = b'0' + (y / 10 % 10) as u8;
                b[3] = b'0' + (y % 10) as u8;
                two(&mut b[5..7], date.month());
                two(&mut b[8..10], date.day());
                b
            });
        }
        match self.date {
            Some(date) if t.timestamp_subsec_nanos() == 0 => {
                let sod = secs.rem_euclid(86_400) as u32;
                let mut b = [0u8; 20];
                b[..11].copy_from_slice(&date);
                two(&mut b[11..13], sod / 3600);
                b[13] = b':';
                two(&mut b[14..16], sod / 60 % 60);
                b[16] = b':';
                two(&mut b[17..19], sod % 60);
                b[19] = b'Z';
                out.write_all(&b)
            }
            _ => write!(out, "{}", Rfc3339(t)),
        }
    }
}

fn two(dst: &mut [u8], v: u32) {
    dst[0] = b'0' + (v / 10 % 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Rounds a metric to 6 decimal places so the JSON summary does not carry
/// the last-bit noise of float arithmetic; `-0.0` becomes `0.0`. Non-finite
/// values pass through (they serialize as `null`).
pub fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let r = (x * 1e6).round() / 1e6;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// `x` as a percentage with `dp` decimals (`0.1234` -> `12.34%`), `n/a`
/// when not finite, and never `-0.00%`.
pub fn percent(x: f64, dp: u32) -> String {
    fixed_scaled(x, 2, dp) + "%"
}

/// `x` with `dp` decimals, `n/a` when not finite, and never `-0.00`.
pub fn fixed(x: f64, dp: u32) -> String {
    fixed_scaled(x, 0, dp)
}

/// `x * 10^shift` rounded half away from zero to `dp` decimals.
///
/// Goes through Decimal (shortest round-trip digits of `x`) so that a
/// metric already rounded to 6 decimals prints as a human would round it:
/// `0.14345` is `14.35%`, where `format!("{:.2}", 0.14345 * 100.0)` gives
/// `14.34` because the product is `14.344999...`.
fn fixed_scaled(x: f64, shift: u32, dp: u32) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let scaled = Decimal::from_f64(x).and_then(|d| d.checked_mul(Decimal::from(10i64.pow(shift))));
    let s = match scaled {
        Some(d) => {
            let mut r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
            r.rescale(dp);
            r.to_string()
        }
        None => {
            let dp = dp as usize;
            format!("{:.dp$}", x * 10f64.powi(shift as i32))
        }
    };
    if s.starts_with('-') && s[1..].bytes().all(|b| b == b'0' || b == b'.') {
        s[1..].to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    #[test]
    fn rfc3339_matches_chrono_auto_si() {
        let base = chrono::Utc
            .with_ymd_and_hms(2024, 1, 2, 5, 0, 0)
            .single()
            .expect("valid");
        for nanos in [0u32, 5_000_000, 123_000, 7, 999_999_999] {
            let t = base + chrono::Duration::nanoseconds(i64::from(nanos));
            assert_eq!(
                Rfc3339(t).to_string(),
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            );
        }
        assert_eq!(Rfc3339(base).to_string(), "2024-01-02T05:00:00Z");
    }

    #[test]
    fn decimals_are_normalized() {
        assert_eq!(Norm(dec!(100.500)).to_string(), "100.5");
        assert_eq!(Norm(dec!(-0.000)).to_string(), "0");
        assert_eq!(Norm(dec!(1200)).to_string(), "1200");
    }

    #[test]
    fn floats_are_stable() {
        assert_eq!(round6(0.1234564999), 0.123456);
        assert_eq!(round6(-0.0000001).to_string(), "0");
        assert_eq!(percent(-0.000001, 2), "0.00%");
        assert_eq!(percent(0.12345, 2), "12.35%");
        assert_eq!(percent(0.14345, 2), "14.35%");
        assert_eq!(percent(0.1, 2), "10.00%");
        assert_eq!(fixed(4.5825755, 3), "4.583");
        assert_eq!(fixed(3.5e6, 1), "3500000.0");
        assert_eq!(fixed(-1.5, 0), "-2");
        assert_eq!(fixed(f64::NAN, 3), "n/a");
    }

    #[test]
    fn fast_writers_match_display() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut tw = TimeWriter::default();
        let base = chrono::Utc
            .with_ymd_and_hms(1999, 12, 31, 0, 0, 0)
            .single()
            .expect("valid");
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let scale = (x % 12) as u32;
            let mant = (x >> 8) as i64 % 10_000_000_000 * if i % 3 == 0 { -1 } else { 1 };
            let d = Decimal::new(mant, scale);
            let mut a = Vec::new();
            write_decimal(&mut a, d).expect("vec");
            assert_eq!(String::from_utf8(a).expect("utf8"), Norm(d).to_string());

            let t = base
                + chrono::Duration::seconds((x % 400_000_000) as i64)
                + chrono::Duration::milliseconds(if i % 5 == 0 { (x % 1000) as i64 } else { 0 });
            let mut a = Vec::new();
            tw.write(&mut a, t).expect("vec");
            assert_eq!(String::from_utf8(a).expect("utf8"), Rfc3339(t).to_string());
        }
        let big = Decimal::MAX;
        let mut a = Vec::new();
        write_decimal(&mut a, big).expect("vec");
        assert_eq!(String::from_utf8(a).expect("utf8"), big.to_string());
        for (v, want) in [
            (0.0454545454, "0.045455"),
            (0.1, "0.1"),
            (0.0, "0"),
            (0.055, "0.055"),
            (1.25, "1.25"),
        ] {
            let mut a = Vec::new();
            write_fraction6(&mut a, v).expect("vec");
            assert_eq!(String::from_utf8(a).expect("utf8"), want);
        }
    }
}
