//! Loading bars from files: both history formats, CSV, merging, errors and
//! the bundled sample.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_backtest as backtest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use backtest::data::{open, sample, BarStream, DataError, DataOptions, SyntheticBars};
use cpapi::history::HistoryError;
use engine::model::{Bar, Conid};
use rust_decimal_macros::dec;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn load(paths: &[PathBuf]) -> Vec<Bar> {
    collect(open(paths, &DataOptions::default()).unwrap())
}

fn collect(stream: BarStream) -> Vec<Bar> {
    stream.collect::<Result<_, _>>().unwrap()
}

fn ms(bars: &[Bar]) -> Vec<i64> {
    bars.iter().map(|b| b.time.timestamp_millis()).collect()
}

/// The spec's `/hmds/history` example, second bar filled in, newest first
/// to show the reader sorts.
const HMDS: &str = r#"{
  "startTime": "20231211-04:00:00",
  "startTimeVal": 1702285200000,
  "endTime": "20231211-17:51:20",
  "endTimeVal": 1702335080000,
  "data": [
    {"t": 1702288800000, "o": 194.8, "c": 195.2, "h": 195.3, "l": 194.75, "v": 980.0},
    {"t": 1702285200000, "o": 195.01, "c": 194.8, "h": 195.01, "l": 194.8, "v": 1723.0}
  ],
  "points": 14,
  "mktDataDelay": 0
}"#;

/// The spec's `/iserver/marketdata/history` example (with `t` in epoch ms).
const ISERVER: &str = r#"{
  "serverId": "20477", "symbol": "AAPL", "text": "APPLE INC", "priceFactor": 100,
  "startTime": "20230818-08:00:00", "high": "17510/472117.45/0", "low": "17170/472117.45/0",
  "timePeriod": "1d", "barLength": 86400, "mdAvailability": "S", "mktDataDelay": 0,
  "outsideRth": true, "tradingDayDuration": 1440, "volumeFactor": 1, "priceDisplayRule": 1,
  "priceDisplayValue": "2", "chartPanStartTime": "20230821-13:30:00", "direction": -1,
  "negativeCapable": false, "messageVersion": 2,
  "data": [{"o": 173.4, "c": 174.7, "h": 175.1, "l": 171.7, "v": 472117.45, "t": 1692345600000}],
  "points": 0, "travelTime": 48
}"#;

const HEADER: &str = "time,open,high,low,close,volume\n";

#[test]
fn hmds_json_is_parsed_and_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "hmds_265598_2023.json", HMDS);
    let stream = open(&[f], &DataOptions::default()).unwrap();
    let contracts = stream.contracts();
    assert_eq!(contracts.len(), 1);
    assert_eq!(contracts[0].conid, Conid(265598));
    assert_eq!(contracts[0].symbol, "265598");
    let bars = collect(stream);
    assert_eq!(ms(&bars), [1702285200000, 1702288800000]);
    let b = bars[0];
    assert_eq!(b.conid, Conid(265598));
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (
            dec!(195.01),
            dec!(195.01),
            dec!(194.8),
            dec!(194.8),
            dec!(1723)
        )
    );
    assert_eq!((bars[1].close, bars[1].low), (dec!(195.2), dec!(194.75)));
}

#[test]
fn iserver_json_gives_bars_and_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "265598.json", ISERVER);
    let stream = open(&[f], &DataOptions::default()).unwrap();
    let contracts = stream.contracts();
    assert_eq!(contracts.len(), 1);
    assert_eq!(
        (contracts[0].conid, contracts[0].symbol.as_str()),
        (Conid(265598), "AAPL")
    );
    let bars = collect(stream);
    assert_eq!(bars.len(), 1);
    assert_eq!(bars[0].time.to_rfc3339(), "2023-08-18T08:00:00+00:00");
    assert_eq!(
        (bars[0].open, bars[0].high, bars[0].low, bars[0].close),
        (dec!(173.4), dec!(175.1), dec!(171.7), dec!(174.7))
    );
    assert_eq!(bars[0].volume, dec!(472117.45));
}

#[test]
fn csv_time_formats() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = write(
        dir.path(),
        "1.csv",
        &format!("{HEADER}1702285200000,10,11,9,10.5,100\n1702285260000,10.5,10.75,10.25,10.5,7\n"),
    );
    let rfc = write(dir.path(), "2.csv", &format!("{HEADER}2023-12-11T04:00:00-05:00,20,21,19,20.5,200\n2023-12-11T09:01:00Z,20.5,20.5,20,20,0\n"));
    let daily = write(dir.path(), "3.csv", &format!("{HEADER}2023-12-08,30,31,29,30.5,300\n2023-12-11,30.5,32,30,31.99,301\n2024-07-01,31,31,31,31,1\n"));

    let bars = load(&[epoch]);
    assert_eq!(ms(&bars), [1702285200000, 1702285260000]);
    assert!(bars.iter().all(|b| b.conid == Conid(1)));
    assert_eq!(bars[1].high, dec!(10.75));

    let bars = load(&[rfc]);
    assert_eq!(ms(&bars), [1702285200000, 1702285260000]);
    assert_eq!(bars[0].close, dec!(20.5));

    // Dates are New York midnight: 05:00 UTC in winter, 04:00 in summer.
    let bars = load(&[daily]);
    let times: Vec<String> = bars.iter().map(|b| b.time.to_rfc3339()).collect();
    assert_eq!(
        times,
        [
            "2023-12-08T05:00:00+00:00",
            "2023-12-11T05:00:00+00:00",
            "2024-07-01T04:00:00+00:00"
        ]
    );
    assert_eq!((bars[1].close, bars[1].volume), (dec!(31.99), dec!(301)));
}

#[test]
fn overlapping_files_merge_sorted_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    // Two downloads of conid 42 overlapping on days 3..=4 (the second one
    // disagrees there and must lose), plus one in between in path order.
    write(dir.path(), "42_a.csv", &format!("{HEADER}2024-01-01,1,1,1,1,1\n2024-01-02,2,2,2,2,2\n2024-01-03,3,3,3,3,3\n2024-01-04,4,4,4,4,4\n"));
    write(
        dir.path(),
        "42_b.csv",
        &format!(
            "{HEADER}2024-01-03,30,30,30,30,30\n2024-01-04,40,40,40,40,40\n2024-01-05,5,5,5,5,5\n"
        ),
    );
    let ms_of = |d: &str| backtest_time(d);
    let json = format!(
        r#"{{"data": [{{"t": {}, "o": 6, "c": 6, "h": 6, "l": 6, "v": 6}}, {{"t": {}, "o": 50, "c": 50, "h": 50, "l": 50}}]}}"#,
        ms_of("2024-01-08"),
        ms_of("2024-01-05")
    );
    write(dir.path(), "42_c.json", &json);
    let bars = load(&[dir.path().to_path_buf()]);
    let closes: Vec<_> = bars.iter().map(|b| b.close).collect();
    assert_eq!(
        closes,
        [dec!(1), dec!(2), dec!(3), dec!(4), dec!(5), dec!(6)]
    );
    assert!(bars.windows(2).all(|w| w[0].time < w[1].time));
    assert_eq!(bars[5].volume, dec!(6));
}

/// Epoch ms of New York midnight on an ISO date, via the loader itself.
fn backtest_time(date: &str) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "1.csv", &format!("{HEADER}{date},1,1,1,1,1\n"));
    load(&[f])[0].time.timestamp_millis()
}

#[test]
fn two_conids_interleave_by_time_then_conid() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "b/200.csv",
        &format!("{HEADER}1000,1,1,1,1,1\n3000,3,3,3,3,3\n4000,4,4,4,4,4\n"),
    );
    let b = write(dir.path(), "a/100.csv", &format!("{HEADER}1000,10,10,10,10,10\n2000,20,20,20,20,20\n4000,40,40,40,40,40\n5000,50,50,50,50,50\n"));
    let bars = load(&[a, b]);
    let seq: Vec<(i64, i64)> = bars
        .iter()
        .map(|b| (b.time.timestamp_millis() / 1000, b.conid.0))
        .collect();
    // Epoch values below 10^11 are seconds, like the history parser's.
    assert_eq!(
        seq,
        [
            (1000, 100),
            (1000, 200),
            (2000, 100),
            (3000, 200),
            (4000, 100),
            (4000, 200),
            (5000, 100)
        ]
    );
    assert_eq!(bars[1].close, dec!(1));
    assert_eq!(bars[6].close, dec!(50));
}

#[test]
fn csv_conid_column_and_forced_conid() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "mixed.csv",
        "conid,time,open,high,low,close,volume,source\n7,1000,1,1,1,1,1,x\n9,1000,2,2,2,2,2,y\n7,2000,3,3,3,3,3,z\n",
    );
    let stream = open(std::slice::from_ref(&f), &DataOptions::default()).unwrap();
    let conids: Vec<_> = stream.contracts().iter().map(|c| c.conid.0).collect();
    assert_eq!(conids, [7, 9]);
    let bars = collect(stream);
    assert_eq!(
        bars.iter()
            .map(|b| (b.conid.0, b.close))
            .collect::<Vec<_>>(),
        [(7, dec!(1)), (9, dec!(2)), (7, dec!(3))]
    );

    // Forcing one conid makes the two rows at 1000 the same bar.
    let forced = DataOptions {
        conid: Some(Conid(5)),
    };
    let stream = open(&[f], &forced).unwrap();
    assert_eq!(stream.contracts().len(), 1);
    let bars = collect(stream);
    assert_eq!(
        bars.iter()
            .map(|b| (b.conid.0, b.close))
            .collect::<Vec<_>>(),
        [(5, dec!(1)), (5, dec!(3))]
    );
}

#[test]
fn unsorted_csv_fails_at_the_row_then_ends() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "77.csv", &format!("{HEADER}2024-01-02,1,1,1,1,1\n2024-01-03,2,2,2,2,2\n2024-01-01,3,3,3,3,3\n2024-01-04,4,4,4,4,4\n"));
    let mut stream = open(&[f], &DataOptions::default()).unwrap();
    assert_eq!(stream.next().unwrap().unwrap().close, dec!(1));
    assert_eq!(stream.next().unwrap().unwrap().close, dec!(2));
    let e = stream.next().unwrap().unwrap_err();
    assert!(matches!(e, DataError::Unsorted { line: 4, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("77.csv:4:"), "{msg}");
    assert!(msg.contains("2024-01-01T05:00:00+00:00"), "{msg}");
    assert!(stream.next().is_none());
    assert!(stream.next().is_none());
}

#[test]
fn html_and_error_bodies_are_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let html = write(
        dir.path(),
        "265598.json",
        "<html><body><h1>Resource not found</h1></body></html>",
    );
    let e = open(&[html], &DataOptions::default()).unwrap_err();
    assert!(
        matches!(
            &e,
            DataError::History {
                source: HistoryError::Html { .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("265598.json: history response is HTML"),
        "{e}"
    );

    let err = write(dir.path(), "8314.json", r#"{"error": "description"}"#);
    let e = open(&[err], &DataOptions::default()).unwrap_err();
    assert!(
        matches!(&e, DataError::History { source: HistoryError::Api(m), .. } if m == "description"),
        "{e}"
    );
    assert!(e.to_string().contains("8314.json"), "{e}");
}

#[test]
fn bad_bars_are_reported_with_index_or_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(
        dir.path(),
        "1.json",
        r#"{"data": [{"t": 1, "o": 1, "h": 1, "l": 1, "c": 1}, {"t": 2, "o": 1, "h": 0.5, "l": 1, "c": 1}]}"#,
    );
    let e = open(&[json], &DataOptions::default()).unwrap_err();
    assert!(
        matches!(
            &e,
            DataError::History {
                source: HistoryError::BadBar { index: 1, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("1.json: bar 1: inconsistent"), "{e}");

    // A CSV row with high below low, after two good rows.
    let csv = write(
        dir.path(),
        "2.csv",
        &format!("{HEADER}1000,1,1,1,1,1\n2000,1,1,1,1,1\n3000,5,4,6,5,1\n"),
    );
    let mut stream = open(&[csv], &DataOptions::default()).unwrap();
    assert!(stream.next().unwrap().is_ok());
    assert!(stream.next().unwrap().is_ok());
    let e = stream.next().unwrap().unwrap_err();
    assert!(matches!(e, DataError::BadRow { line: 4, .. }), "{e}");
    assert!(e.to_string().contains("2.csv:4: inconsistent bar"), "{e}");
    assert!(stream.next().is_none());

    // A bad first row fails open() itself.
    let csv = write(dir.path(), "3.csv", &format!("{HEADER}noon,1,1,1,1,1\n"));
    let e = open(&[csv], &DataOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::BadRow { line: 2, .. }), "{e}");
}

#[test]
fn missing_conid_and_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "aapl/bars.csv",
        &format!("{HEADER}1000,1,1,1,1,1\n"),
    );
    let e = open(std::slice::from_ref(&f), &DataOptions::default()).unwrap_err();
    assert!(
        matches!(&e, DataError::NoConid { file } if *file == f),
        "{e}"
    );
    let j = write(dir.path(), "aapl/daily.json", HMDS);
    assert!(matches!(
        open(&[j], &DataOptions::default()),
        Err(DataError::NoConid { .. })
    ));

    let forced = DataOptions {
        conid: Some(Conid(265598)),
    };
    let bars = collect(open(&[f], &forced).unwrap());
    assert_eq!((bars.len(), bars[0].conid), (1, Conid(265598)));

    // The parent directory names the conid when the file name cannot.
    let p = write(
        dir.path(),
        "8314/bars.csv",
        &format!("{HEADER}1000,1,1,1,1,1\n"),
    );
    assert_eq!(load(&[p])[0].conid, Conid(8314));

    let txt = write(dir.path(), "notes.txt", "hello");
    assert!(matches!(
        open(&[txt], &DataOptions::default()),
        Err(DataError::UnsupportedExtension { .. })
    ));
    let missing = dir.path().join("nope");
    let e = open(std::slice::from_ref(&missing), &DataOptions::default()).unwrap_err();
    assert!(matches!(e, DataError::Io { .. }));
    assert!(e.to_string().contains("nope"), "{e}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write(&empty, "readme.md", "no data here");
    assert!(matches!(
        open(&[empty], &DataOptions::default()),
        Err(DataError::NoFiles { .. })
    ));
}

#[test]
fn directories_are_walked_recursively_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    // Same bar in three files: the first by path wins.
    write(
        dir.path(),
        "z/265598.csv",
        &format!("{HEADER}1000,3,3,3,3,3\n"),
    );
    write(
        dir.path(),
        "a/deep/er/265598.json",
        r#"{"data": [{"t": 1000, "o": 1, "h": 1, "l": 1, "c": 1}]}"#,
    );
    write(
        dir.path(),
        "m/265598.csv",
        &format!("{HEADER}1000,2,2,2,2,2\n2000,2,2,2,2,2\n"),
    );
    write(dir.path(), "a/notes.txt", "ignored");
    write(
        dir.path(),
        "a/8314.CSV",
        &format!("{HEADER}1500,9,9,9,9,9\n"),
    );
    let bars = load(&[dir.path().to_path_buf()]);
    let seq: Vec<_> = bars.iter().map(|b| (b.conid.0, b.close)).collect();
    assert_eq!(seq, [(265598, dec!(1)), (8314, dec!(9)), (265598, dec!(2))]);

    // Explicit paths keep the caller's order: the z file now comes first.
    let bars = load(&[dir.path().join("z"), dir.path().to_path_buf()]);
    assert_eq!(bars[0].close, dec!(3));
    assert_eq!(bars.len(), 3);
}

#[test]
fn embedded_sample() {
    let stream = sample();
    let contracts: Vec<_> = stream
        .contracts()
        .into_iter()
        .map(|c| (c.conid.0, c.symbol))
        .collect();
    assert_eq!(
        contracts,
        [(8314, "IBM".to_owned()), (265598, "AAPL".to_owned())]
    );
    let bars = collect(stream);
    assert_eq!(bars.len(), 2566);

    let mut per: BTreeMap<i64, Vec<Bar>> = BTreeMap::new();
    for b in &bars {
        per.entry(b.conid.0).or_default().push(*b);
    }
    let aapl = &per[&265598];
    let ibm = &per[&8314];
    // Every weekday of 2019-2024 once, although the yearly files overlap.
    assert_eq!((aapl.len(), ibm.len()), (1566, 1000));
    assert_eq!(aapl[0].time.to_rfc3339(), "2019-01-01T05:00:00+00:00");
    assert_eq!(aapl[1565].time.to_rfc3339(), "2024-12-31T05:00:00+00:00");
    assert_eq!(ibm[0].time.to_rfc3339(), "2021-03-03T05:00:00+00:00");
    assert_eq!(ibm[999].time.to_rfc3339(), "2024-12-31T05:00:00+00:00");
    assert_eq!((aapl[0].open, aapl[0].close), (dec!(150.39), dec!(149.75)));
    assert_eq!(
        (aapl[1565].close, ibm[0].close, ibm[999].close),
        (dec!(299.84), dec!(129.91), dec!(190.04))
    );
    for series in [aapl, ibm] {
        assert!(series.windows(2).all(|w| w[0].time < w[1].time));
        assert!(series
            .iter()
            .all(|b| b.is_consistent() && b.volume > dec!(0) && b.close.scale() <= 2));
    }
    assert!(bars
        .windows(2)
        .all(|w| (w[0].time, w[0].conid) < (w[1].time, w[1].conid)));

    // The committed files read from disk give the same bars.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample");
    let from_disk = load(&[dir]);
    assert_eq!(from_disk, bars);
}

#[test]
fn synthetic_bars_are_a_lazy_stream() {
    let bars: Vec<Bar> = SyntheticBars::new(Conid(3), 9, 1000).collect();
    assert_eq!(bars.len(), 1000);
    assert!(bars
        .iter()
        .all(|b| b.is_consistent() && b.conid == Conid(3)));
    // Far longer than could be stored: counting touches one bar at a time.
    assert_eq!(
        SyntheticBars::new(Conid(3), 9, 2_000_000).count(),
        2_000_000
    );
}
