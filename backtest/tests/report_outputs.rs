//! End-to-end checks of `backtest::report`: the exact CSV contents, the
//! metrics on a hand-computed equity series, byte-stable outputs, the PNG,
//! the HTML and the bounded plot series.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use std::collections::BTreeMap;
use std::path::Path;

use backtest::report::{
    print_table, Recorder, RecorderOptions, ReportError, RunMeta, Summary, EQUITY_CSV, EQUITY_PNG,
    REPORT_HTML, SUMMARY_JSON, TRADES_CSV,
};
use chrono::{TimeZone, Utc};
use engine::model::{Conid, Timestamp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn at(d: u32, h: u32, m: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 1, d, h, m, 0)
        .single()
        .expect("valid time")
}

const AAPL: Conid = Conid(265598);
const XYZ: Conid = Conid(8314);

fn meta() -> RunMeta {
    let mut params = BTreeMap::new();
    params.insert("fast".to_owned(), "10".to_owned());
    params.insert("note".to_owned(), "<b>&\"x\"</b>".to_owned());
    RunMeta {
        strategy: "sma_cross".to_owned(),
        params,
        bars: 7,
        elapsed_ms: 42,
        final_cash: dec!(1143.45),
        commission_model: "ibkr-fixed".to_owned(),
        data: "data/<test>.csv".to_owned(),
    }
}

/// Equity observations: session days (New York) Jan 2 (closing at 1050, the
/// 03:00Z point is 22:00 on Jan 2 in New York), Jan 3 (945), Jan 4 (1039.5)
/// and Jan 5 (1143.45). Daily returns: -10%, +10%, +10%. Peak 1100, trough
/// 945.
fn equity_series() -> Vec<(Timestamp, Decimal)> {
    vec![
        (at(2, 15, 0), dec!(1000)),
        (at(2, 21, 0), dec!(1100)),
        (at(3, 3, 0), dec!(1050)),
        (at(3, 15, 0), dec!(990)),
        (at(3, 21, 0), dec!(945)),
        (at(4, 21, 0), dec!(1039.5)),
        (at(5, 21, 0), dec!(1143.45)),
    ]
}

/// Fills: a long in AAPL (open, add, partial exit, exit), a short in XYZ
/// flipped to long by one fill and then closed, and an AAPL long left open.
fn fills() -> Vec<(Timestamp, Conid, Decimal, Decimal, Decimal)> {
    vec![
        (at(2, 15, 0), AAPL, dec!(10), dec!(100), dec!(1)),
        (at(2, 16, 0), AAPL, dec!(10), dec!(110), dec!(1)),
        (at(2, 17, 0), AAPL, dec!(-5), dec!(120), dec!(0.5)),
        (at(2, 18, 0), AAPL, dec!(-15), dec!(100), dec!(1.50)),
        (at(3, 15, 0), XYZ, dec!(-3), dec!(50.25), dec!(0.3)),
        (at(3, 16, 0), XYZ, dec!(4), dec!(49.75), dec!(0.4)),
        (at(3, 17, 30), XYZ, dec!(-1), dec!(51), dec!(0.1)),
        (at(4, 15, 0), AAPL, dec!(7), dec!(101), dec!(0.7)),
    ]
}

/// Replays fills and equity interleaved in time order.
fn run(out_dir: Option<&Path>) -> Result<Summary, ReportError> {
    let opts = RecorderOptions {
        out_dir: out_dir.map(Path::to_path_buf),
        ..RecorderOptions::default()
    };
    let mut rec = Recorder::new(dec!(1000), opts)?;
    let fills = fills();
    let mut fi = fills.iter().peekable();
    for (t, e) in equity_series() {
        while let Some(f) = fi.next_if(|f| f.0 <= t) {
            rec.on_fill(f.0, f.1, f.2, f.3, f.4)?;
        }
        rec.on_equity(t, e)?;
    }
    for f in fi {
        rec.on_fill(f.0, f.1, f.2, f.3, f.4)?;
    }
    rec.finish(meta())
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

fn read_str(dir: &Path, name: &str) -> String {
    String::from_utf8(read(dir, name)).expect("utf-8")
}

#[test]
fn trades_csv_is_exact() -> Result<(), ReportError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = run(Some(dir.path()))?;
    assert_eq!(
        read_str(dir.path(), TRADES_CSV),
        "entry_time,exit_time,conid,side,qty,entry_price,exit_price,pnl,commission\n\
         2024-01-02T15:00:00Z,2024-01-02T18:00:00Z,265598,long,20,105,105,-4,4\n\
         2024-01-03T15:00:00Z,2024-01-03T16:00:00Z,8314,short,3,50.25,49.75,0.9,0.6\n\
         2024-01-03T16:00:00Z,2024-01-03T17:30:00Z,8314,long,1,49.75,51,1.05,0.2\n"
    );
    assert_eq!(s.trades, 3);
    assert_eq!(s.winning_trades, 2);
    assert_eq!(s.losing_trades, 1);
    assert_eq!(s.open_trades, 1);
    assert_eq!(s.win_rate, 0.666667);
    assert_eq!(s.gross_profit, dec!(1.95));
    assert_eq!(s.gross_loss, dec!(4));
    assert_eq!(s.profit_factor, Some(0.4875));
    assert_eq!(s.total_commission, dec!(5.5));
    Ok(())
}

#[test]
fn equity_csv_is_exact() -> Result<(), ReportError> {
    let dir = tempfile::tempdir().expect("tempdir");
    run(Some(dir.path()))?;
    assert_eq!(
        read_str(dir.path(), EQUITY_CSV),
        "time,equity,drawdown\n\
         2024-01-02T15:00:00Z,1000,0\n\
         2024-01-02T21:00:00Z,1100,0\n\
         2024-01-03T03:00:00Z,1050,0.045455\n\
         2024-01-03T15:00:00Z,990,0.1\n\
         2024-01-03T21:00:00Z,945,0.140909\n\
         2024-01-04T21:00:00Z,1039.5,0.055\n\
         2024-01-05T21:00:00Z,1143.45,0\n"
    );
    Ok(())
}

#[test]
fn metrics_match_hand_computation() -> Result<(), ReportError> {
    let s = run(None)?;
    let close = 1e-6;
    assert_eq!(s.days, 4);
    assert_eq!(s.daily_returns, 3);
    assert_eq!(s.equity_points, 7);
    assert_eq!(s.final_equity, dec!(1143.45));
    assert_eq!(s.net_profit, dec!(143.45));
    assert_eq!(s.total_return, 0.14345);
    // (1100 - 945) / 1100
    assert_eq!(s.max_drawdown, 0.140909);

    // Returns -0.1, 0.1, 0.1: mean 1/30, sample variance
    // ((2/15)^2 + 2 (1/15)^2) / 2 = 0.04/3, downside mean square 0.01/3.
    let mean = 1.0 / 30.0;
    let std = (0.04f64 / 3.0).sqrt();
    let downside = (0.01f64 / 3.0).sqrt();
    let sharpe = mean / std * 252f64.sqrt();
    let sortino = mean / downside * 252f64.sqrt();
    assert!((sharpe - 4.582576).abs() < close, "{sharpe}");
    assert!(
        (s.sharpe - sharpe).abs() < close,
        "{} vs {sharpe}",
        s.sharpe
    );
    assert!(
        (s.sortino - sortino).abs() < close,
        "{} vs {sortino}",
        s.sortino
    );

    // Span: Jan 2 15:00Z to Jan 5 21:00Z = 3.25 days.
    let cagr = 1.14345f64.powf(365.25 / 3.25) - 1.0;
    assert!((s.cagr - cagr).abs() / cagr < 1e-9, "{} vs {cagr}", s.cagr);
    assert_eq!(s.start, Some(at(2, 15, 0)));
    assert_eq!(s.end, Some(at(5, 21, 0)));
    Ok(())
}

#[test]
fn no_observation_means_no_return() -> Result<(), ReportError> {
    let s = Recorder::new(dec!(500), RecorderOptions::default())?.finish(RunMeta::default())?;
    assert_eq!(s.total_return, 0.0);
    assert_eq!(s.cagr, 0.0);
    assert_eq!(s.sharpe, 0.0);
    assert_eq!(s.max_drawdown, 0.0);
    assert_eq!(s.trades, 0);
    assert_eq!(s.win_rate, 0.0);
    assert_eq!(s.profit_factor, None);
    assert_eq!(s.final_equity, dec!(500));
    Ok(())
}

#[test]
fn outputs_are_byte_identical_across_runs() -> Result<(), ReportError> {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    run(Some(a.path()))?;
    run(Some(b.path()))?;
    for name in [
        EQUITY_CSV,
        TRADES_CSV,
        SUMMARY_JSON,
        EQUITY_PNG,
        REPORT_HTML,
    ] {
        assert_eq!(read(a.path(), name), read(b.path(), name), "{name} differs");
    }
    Ok(())
}

#[test]
fn summary_json_is_stable_and_typed() -> Result<(), ReportError> {
    let dir = tempfile::tempdir().expect("tempdir");
    run(Some(dir.path()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&read(dir.path(), SUMMARY_JSON)).expect("valid JSON");
    assert_eq!(v["strategy"], "sma_cross");
    assert_eq!(v["start"], "2024-01-02T15:00:00Z");
    assert_eq!(v["initial_cash"], "1000");
    assert_eq!(v["final_equity"], "1143.45");
    assert_eq!(v["total_commission"], "5.5");
    assert_eq!(v["total_return"], 0.14345);
    assert_eq!(v["max_drawdown"], 0.140909);
    assert_eq!(v["profit_factor"], 0.4875);
    assert_eq!(v["params"]["fast"], "10");
    assert_eq!(v["elapsed_ms"], 42);
    Ok(())
}

/// CRC-32 (IEEE) as used by PNG chunks.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn png_is_well_formed() -> Result<(), ReportError> {
    let dir = tempfile::tempdir().expect("tempdir");
    run(Some(dir.path()))?;
    let png = read(dir.path(), EQUITY_PNG);
    assert!(
        png.len() > 1000,
        "suspiciously small PNG: {} bytes",
        png.len()
    );
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Walk the chunks: every CRC must match, IHDR first, IEND last.
    let mut pos = 8;
    let mut kinds = Vec::new();
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let body = &png[pos + 4..pos + 8 + len];
        let crc = u32::from_be_bytes(
            png[pos + 8 + len..pos + 12 + len]
                .try_into()
                .expect("4 bytes"),
        );
        assert_eq!(crc32(body), crc, "bad CRC in chunk {:?}", &body[..4]);
        kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
        if &body[..4] == b"IHDR" {
            let w = u32::from_be_bytes(body[4..8].try_into().expect("4 bytes"));
            let h = u32::from_be_bytes(body[8..12].try_into().expect("4 bytes"));
            assert_eq!((w, h), (1000, 600));
        }
        pos += 12 + len;
    }
    assert_eq!(pos, png.len());
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"));
    assert_eq!(kinds.last().map(String::as_str), Some("IEND"));
    assert!(kinds.iter().any(|k| k == "IDAT"));
    Ok(())
}

#[test]
fn html_is_self_contained_and_shows_the_numbers() -> Result<(), ReportError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = run(Some(dir.path()))?;
    let html = read_str(dir.path(), REPORT_HTML);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("http:") && !html.contains("https:"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"//"));
    assert!(html.contains("src=\"data:image/png;base64,"));
    for needle in [
        "sma_cross",
        "14.35%",  // total return
        "14.09%",  // max drawdown
        "4.583",   // sharpe
        "9.165",   // sortino
        "66.7%",   // win rate
        "0.488",   // profit factor
        "1143.45", // final equity
        "2024-01-03T16:00:00Z",
        "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;",
        "data/&lt;test&gt;.csv",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle:?}");
    }
    assert!(!html.contains("<b>&"));

    let mut table = Vec::new();
    print_table(&s, &mut table).expect("write to Vec");
    let table = String::from_utf8(table).expect("utf-8");
    assert!(table.contains("Total return"));
    assert!(table.contains("14.35%"));
    assert!(table.contains("4.583"));
    // Aligned: every value starts in the same column.
    let cols: Vec<usize> = table
        .lines()
        .map(|l| {
            l.find("  ")
                .map(|i| i + l[i..].len() - l[i..].trim_start().len())
        })
        .map(|c| c.expect("two columns"))
        .collect();
    assert!(cols.windows(2).all(|w| w[0] == w[1]), "{table}");
    Ok(())
}

#[test]
fn plot_buffer_stays_bounded_over_a_million_points() -> Result<(), ReportError> {
    let opts = RecorderOptions {
        plot_points: 2000,
        ..RecorderOptions::default()
    };
    let mut rec = Recorder::new(dec!(100000), opts)?;
    let allocated = rec.plot_allocated();
    assert_eq!(allocated, 2000);
    let t0 = at(2, 14, 30);
    let mut equity = dec!(100000);
    for i in 0..1_000_000i64 {
        // A slow random-looking walk, deterministic.
        equity += Decimal::from((i * 7919) % 11 - 5);
        rec.on_equity(t0 + chrono::Duration::minutes(i), equity)?;
        if i % 997 == 0 {
            assert!(rec.plot_len() <= 2000);
        }
    }
    assert!(rec.plot_len() <= 2000);
    assert!(rec.plot_len() >= 1000);
    assert_eq!(rec.plot_allocated(), allocated);
    let s = rec.finish(RunMeta::default())?;
    assert_eq!(s.equity_points, 1_000_000);
    assert!(s.days > 600);
    Ok(())
}

#[test]
fn invalid_input_is_an_error_not_a_panic() -> Result<(), ReportError> {
    assert!(matches!(
        Recorder::new(dec!(0), RecorderOptions::default()),
        Err(ReportError::InitialCash(_))
    ));
    assert!(matches!(
        Recorder::new(
            dec!(1),
            RecorderOptions {
                plot_points: 1,
                ..RecorderOptions::default()
            }
        ),
        Err(ReportError::PlotPoints(1))
    ));
    let mut rec = Recorder::new(dec!(1000), RecorderOptions::default())?;
    rec.on_equity(at(3, 15, 0), dec!(1000))?;
    assert!(matches!(
        rec.on_equity(at(2, 15, 0), dec!(1000)),
        Err(ReportError::TimeWentBackwards { .. })
    ));
    assert!(matches!(
        rec.on_fill(at(3, 15, 0), AAPL, dec!(0), dec!(1), dec!(0)),
        Err(ReportError::ZeroFill { .. })
    ));
    Ok(())
}
