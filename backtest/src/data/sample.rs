//! The bundled sample: six years of daily AAPL bars as yearly `/hmds/history`
//! responses and four years of IBM as one `/iserver/marketdata/history`
//! response, so a backtest runs offline from any directory.
//!
//! The files are not market data: they are this module's deterministic
//! output (a seeded random walk in `Decimal`), committed under
//! `data/sample/` and compiled into the binary. A test regenerates them and
//! demands byte equality, so the committed copy is provably ours. To change
//! the generator, rerun that test with `IBFLOW_REGEN_SAMPLE=1` to rewrite the
//! files, then rebuild so the embedded copy follows.
//!
//! Layout choices mirror the spec examples: hmds `startTime`/`endTime` are
//! exchange (New York) wall time beside epoch-millisecond `...Val`s, `points`
//! is the bar count; the iserver response has `points` = count - 1 and the
//! summary `high`/`low` as `price*priceFactor/volume/minutes-from-start`.
//! IBM is the 1000 bars the iserver endpoint returns at most.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{Datelike, NaiveDate, Weekday};
use chrono_tz::America::New_York;
use engine::model::{Bar, Conid, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rust_decimal::{Decimal, RoundingStrategy};

use super::source::{ny_midnight, Format, Origin};
use super::{BarStream, DataError, DataOptions};

const AAPL: Conid = Conid(265598);
const IBM: Conid = Conid(8314);
const FIRST_YEAR: i32 = 2019;
const LAST_YEAR: i32 = 2024;
/// Bars each yearly file repeats from the year before, as overlapping
/// downloads do, so the sample exercises de-duplication.
const OVERLAP: usize = 5;
const IBM_BARS: usize = 1000;
/// Seeds picked (among the first sixty tried) for a sample that looks like
/// a stock: AAPL roughly doubles with a deep drawdown on the way, IBM trends
/// up with whipsaws. Changing them rewrites the committed sample.
const SEED_AAPL: u64 = 0x1bf1_0034;
const SEED_IBM: u64 = 0x1bf2_0002;

const SAMPLE_SYMBOLS: &[(Conid, &str)] = &[(AAPL, "AAPL"), (IBM, "IBM")];

macro_rules! sample_file {
    ($name:literal) => {
        (
            $name,
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../data/sample/",
                $name
            )) as &[u8],
        )
    };
}

/// The committed sample files, by file name, as compiled into the binary.
pub const SAMPLE_FILES: &[(&str, &[u8])] = &[
    sample_file!("hmds_265598_2019.json"),
    sample_file!("hmds_265598_2020.json"),
    sample_file!("hmds_265598_2021.json"),
    sample_file!("hmds_265598_2022.json"),
    sample_file!("hmds_265598_2023.json"),
    sample_file!("hmds_265598_2024.json"),
    sample_file!("iserver_8314.json"),
];

/// The embedded sample as a stream, exactly as [`super::open`] would read
/// `data/sample/`, but with symbols for the hmds files (which carry none).
///
/// Infallible in signature because the data is ours and tested; should the
/// binary somehow hold a broken copy, the error is the stream's first item.
pub fn sample() -> BarStream {
    let files = SAMPLE_FILES.iter().map(|&(name, bytes)| {
        (
            Origin::Embedded {
                name: Path::new("data/sample").join(name),
                bytes,
            },
            Format::Json,
        )
    });
    BarStream::build(files, &DataOptions::default(), SAMPLE_SYMBOLS)
        .unwrap_or_else(BarStream::failed)
}

/// Write the sample files into `dir` (created if missing).
pub fn generate_sample(dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
        file: dir.to_path_buf(),
        source,
    })?;
    for (name, text) in sample_contents() {
        let file = dir.join(name);
        std::fs::write(&file, text).map_err(|source| DataError::Io { file, source })?;
    }
    Ok(())
}

/// Every sample file's name and text.
fn sample_contents() -> Vec<(String, String)> {
    let mut out = Vec::new();

    let days = weekdays(ymd(FIRST_YEAR, 1, 1), ymd(LAST_YEAR, 12, 31));
    let aapl = random_walk(SEED_AAPL, AAPL, &days, Decimal::new(15_000, 2), 60_000_000);
    let mut start = 0;
    for year in FIRST_YEAR..=LAST_YEAR {
        let end = start + aapl[start..].partition_point(|b| year_of(b.time) <= year);
        let from = if year == FIRST_YEAR {
            start
        } else {
            start.saturating_sub(OVERLAP)
        };
        out.push((
            format!("hmds_{}_{year}.json", AAPL.0),
            hmds_json(&aapl[from..end]),
        ));
        start = end;
    }

    let ibm_days = &days[days.len().saturating_sub(IBM_BARS)..];
    let ibm = random_walk(SEED_IBM, IBM, ibm_days, Decimal::new(13_000, 2), 4_000_000);
    out.push((format!("iserver_{}.json", IBM.0), iserver_json(&ibm)));
    out
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn year_of(t: Timestamp) -> i32 {
    t.with_timezone(&New_York).year()
}

/// Midnight New York of every Monday-to-Friday in `from..=to`; holidays are
/// not worth modelling in synthetic data.
fn weekdays(from: NaiveDate, to: NaiveDate) -> Vec<Timestamp> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .filter_map(ny_midnight)
        .collect()
}

/// Uniform in `0..n`. The modulo bias (< 2^-40 here) is irrelevant.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

/// Approximately standard normal (Irwin-Hall: twelve uniforms minus six),
/// in Decimal: integer-only arithmetic, so the output cannot drift with a
/// platform's `ln`/`exp` and the byte-equality test holds everywhere.
fn normal(rng: &mut ChaCha8Rng) -> Decimal {
    let sum: u64 = (0..12).map(|_| below(rng, 1_000_000)).sum();
    Decimal::new(sum as i64 - 6_000_000, 6)
}

fn cents(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Geometric random walk with drift regimes: a trend of 30 to 180 days at up
/// to +/-0.25% a day under 1.5% daily noise, so moving-average crossovers
/// find some trends and some whipsaws.
fn random_walk(
    seed: u64,
    conid: Conid,
    days: &[Timestamp],
    start: Decimal,
    volume: u64,
) -> Vec<Bar> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (vol, gap, wick) = (Decimal::new(15, 3), Decimal::new(4, 3), Decimal::new(6, 3));
    let mut close = start;
    let mut drift = Decimal::ZERO;
    let mut regime_left = 0;
    let mut bars = Vec::with_capacity(days.len());
    for &time in days {
        if regime_left == 0 {
            regime_left = 30 + below(&mut rng, 151);
            drift = Decimal::new(below(&mut rng, 51) as i64 - 25, 4);
        }
        regime_left -= 1;
        let open = cents(close * (Decimal::ONE + gap * normal(&mut rng)));
        let next = cents(close * (Decimal::ONE + drift + vol * normal(&mut rng)));
        let high = cents(open.max(next) * (Decimal::ONE + wick * normal(&mut rng).abs()));
        let low = cents(open.min(next) * (Decimal::ONE - wick * normal(&mut rng).abs()));
        let shares = volume * 6 / 10 + below(&mut rng, volume * 8 / 10 + 1);
        bars.push(Bar {
            conid,
            time,
            open,
            high,
            low,
            close: next,
            volume: Decimal::from(shares),
        });
        close = next;
    }
    bars
}

/// A price as the gateway writes it: a plain JSON number, no trailing zeros.
fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

fn ny_stamp(t: Timestamp) -> String {
    t.with_timezone(&New_York)
        .format("%Y%m%d-%H:%M:%S")
        .to_string()
}

fn hmds_json(bars: &[Bar]) -> String {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return "{\"data\": [], \"points\": 0, \"mktDataDelay\": 0}\n".to_owned();
    };
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"startTime\": \"{}\",", ny_stamp(first.time));
    let _ = writeln!(s, "  \"startTimeVal\": {},", first.time.timestamp_millis());
    let _ = writeln!(s, "  \"endTime\": \"{}\",", ny_stamp(last.time));
    let _ = writeln!(s, "  \"endTimeVal\": {},", last.time.timestamp_millis());
    s.push_str("  \"data\": [\n");
    for (i, b) in bars.iter().enumerate() {
        let _ = writeln!(
            s,
            "    {{\"t\": {}, \"o\": {}, \"c\": {}, \"h\": {}, \"l\": {}, \"v\": {}}}{}",
            b.time.timestamp_millis(),
            num(b.open),
            num(b.close),
            num(b.high),
            num(b.low),
            num(b.volume),
            if i + 1 < bars.len() { "," } else { "" }
        );
    }
    s.push_str("  ],\n");
    let _ = writeln!(s, "  \"points\": {},", bars.len());
    s.push_str("  \"mktDataDelay\": 0\n}\n");
    s
}

fn iserver_json(bars: &[Bar]) -> String {
    let (Some(first), Some(last)) = (bars.first(), bars.last()) else {
        return "{\"data\": [], \"points\": 0}\n".to_owned();
    };
    const PRICE_FACTOR: i64 = 100;
    let start = first.time;
    let summary = |b: &Bar, price: Decimal| {
        format!(
            "{}/{}/{}",
            num(price * Decimal::from(PRICE_FACTOR)),
            num(b.volume),
            (b.time - start).num_minutes()
        )
    };
    let hi = bars
        .iter()
        .fold(first, |m, b| if b.high > m.high { b } else { m });
    let lo = bars
        .iter()
        .fold(first, |m, b| if b.low < m.low { b } else { m });
    // The request that would have produced this: from the next weekday,
    // going back (`direction: -1`).
    let last_day = last.time.with_timezone(&New_York).date_naive();
    let pan = last_day
        .iter_days()
        .skip(1)
        .find(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .unwrap_or(last_day)
        .format("%Y%m%d-13:30:00");

    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"serverId\": \"20477\",");
    let _ = writeln!(s, "  \"symbol\": \"IBM\",");
    let _ = writeln!(s, "  \"text\": \"INTL BUSINESS MACHINES CORP\",");
    let _ = writeln!(s, "  \"priceFactor\": {PRICE_FACTOR},");
    let _ = writeln!(
        s,
        "  \"startTime\": \"{}\",",
        start.format("%Y%m%d-%H:%M:%S")
    );
    let _ = writeln!(s, "  \"high\": \"{}\",", summary(hi, hi.high));
    let _ = writeln!(s, "  \"low\": \"{}\",", summary(lo, lo.low));
    let _ = writeln!(s, "  \"timePeriod\": \"4y\",");
    let _ = writeln!(s, "  \"barLength\": 86400,");
    let _ = writeln!(s, "  \"mdAvailability\": \"S\",");
    let _ = writeln!(s, "  \"mktDataDelay\": 0,");
    let _ = writeln!(s, "  \"outsideRth\": false,");
    let _ = writeln!(s, "  \"tradingDayDuration\": 1440,");
    let _ = writeln!(s, "  \"volumeFactor\": 1,");
    let _ = writeln!(s, "  \"priceDisplayRule\": 1,");
    let _ = writeln!(s, "  \"priceDisplayValue\": \"2\",");
    let _ = writeln!(s, "  \"chartPanStartTime\": \"{pan}\",");
    let _ = writeln!(s, "  \"direction\": -1,");
    let _ = writeln!(s, "  \"negativeCapable\": false,");
    let _ = writeln!(s, "  \"messageVersion\": 2,");
    s.push_str("  \"data\": [\n");
    for (i, b) in bars.iter().enumerate() {
        let _ = writeln!(
            s,
            "    {{\"o\": {}, \"c\": {}, \"h\": {}, \"l\": {}, \"v\": {}, \"t\": {}}}{}",
            num(b.open),
            num(b.close),
            num(b.high),
            num(b.low),
            num(b.volume),
            b.time.timestamp_millis(),
            if i + 1 < bars.len() { "," } else { "" }
        );
    }
    s.push_str("  ],\n");
    let _ = writeln!(s, "  \"points\": {},", bars.len() - 1);
    s.push_str("  \"travelTime\": 48\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sma_crossings(closes: &[Decimal], fast: usize, slow: usize) -> usize {
        let sma =
            |i: usize, n: usize| closes[i + 1 - n..=i].iter().sum::<Decimal>() / Decimal::from(n);
        let mut prev: Option<bool> = None;
        let mut n = 0;
        for i in slow - 1..closes.len() {
            let above = sma(i, fast) > sma(i, slow);
            if prev.is_some_and(|p| p != above) {
                n += 1;
            }
            prev = Some(above);
        }
        n
    }

    /// The sample exists to demo a moving-average crossover, so it must
    /// trend enough to trade a sensible number of times, not every week.
    #[test]
    fn sma_crossover_trades_a_sensible_number_of_times() {
        let all: Vec<Bar> = sample().collect::<Result<_, _>>().unwrap();
        let closes = |conid| -> Vec<Decimal> {
            all.iter()
                .filter(|b| b.conid == conid)
                .map(|b| b.close)
                .collect()
        };
        let (aapl, ibm) = (closes(AAPL), closes(IBM));
        let counts: Vec<usize> = [(10, 30), (20, 50), (50, 200)]
            .iter()
            .flat_map(|&(f, s)| [sma_crossings(&aapl, f, s), sma_crossings(&ibm, f, s)])
            .collect();
        assert_eq!(counts, [55, 37, 30, 26, 4, 10]);
        assert_eq!(
            (aapl.iter().min(), aapl.iter().max()),
            (
                Some(&Decimal::new(12_963, 2)),
                Some(&Decimal::new(34_672, 2))
            )
        );
        assert_eq!(
            (ibm.iter().min(), ibm.iter().max()),
            (
                Some(&Decimal::new(11_835, 2)),
                Some(&Decimal::new(20_829, 2))
            )
        );
    }

    #[test]
    fn regenerated_sample_is_byte_identical() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample");
        if std::env::var_os("IBFLOW_REGEN_SAMPLE").is_some() {
            generate_sample(&committed).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        generate_sample(dir.path()).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let embedded: Vec<&str> = SAMPLE_FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, embedded);
        for (name, bytes) in SAMPLE_FILES {
            let fresh = std::fs::read(dir.path().join(name)).unwrap();
            let on_disk = std::fs::read(committed.join(name)).unwrap();
            assert!(fresh == on_disk, "{name} differs from data/sample/{name}");
            assert!(
                fresh == *bytes,
                "{name} differs from the embedded copy (rebuild)"
            );
        }
        let total: usize = SAMPLE_FILES.iter().map(|(_, b)| b.len()).sum();
        assert!(total < 1_000_000, "sample is {total} bytes");
    }
}
