//! The two readers (saved history JSON, CSV) over one source abstraction, so
//! files on disk and the sample embedded in the binary share a code path.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::America::New_York;
use cpapi::history::parse_history;
use engine::model::from_epoch_ms;
use engine::model::{Bar, Conid, Timestamp};
use rust_decimal::Decimal;

use super::DataError;

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    File(PathBuf),
    /// Compiled into the binary; `name` is what errors call it.
    Embedded {
        name: PathBuf,
        bytes: &'static [u8],
    },
}

impl Origin {
    pub(crate) fn label(&self) -> &Path {
        match self {
            Origin::File(p) => p,
            Origin::Embedded { name, .. } => name,
        }
    }

    fn io_error(&self, source: std::io::Error) -> DataError {
        DataError::Io {
            file: self.label().to_path_buf(),
            source,
        }
    }

    fn read_all(&self) -> Result<Cow<'static, [u8]>, DataError> {
        match self {
            Origin::File(p) => std::fs::read(p)
                .map(Cow::Owned)
                .map_err(|e| self.io_error(e)),
            Origin::Embedded { bytes, .. } => Ok(Cow::Borrowed(bytes)),
        }
    }

    fn reader(&self) -> Result<Box<dyn Read + Send>, DataError> {
        match self {
            // No BufReader: the csv reader buffers itself.
            Origin::File(p) => File::open(p)
                .map(|f| Box::new(f) as Box<dyn Read + Send>)
                .map_err(|e| self.io_error(e)),
            Origin::Embedded { bytes, .. } => Ok(Box::new(*bytes)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv,
}

impl Format {
    pub(crate) fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("json") {
            Some(Format::Json)
        } else if ext.eq_ignore_ascii_case("csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// A saved response of either history endpoint, sorted by time (responses
/// come newest-first from some requests), plus the symbol if it named one.
pub(crate) fn load_json(
    origin: &Origin,
    conid: Conid,
) -> Result<(Vec<Bar>, Option<String>), DataError> {
    let body = origin.read_all()?;
    let parsed = parse_history(conid, &body).map_err(|source| DataError::History {
        file: origin.label().to_path_buf(),
        source,
    })?;
    let mut bars = parsed.bars;
    // Stable, so a response's own duplicates keep their order and the merge
    // keeps the first.
    bars.sort_by_key(|b| b.time);
    Ok((bars, parsed.symbol))
}

/// Midnight of `date` in New York, as a UTC instant.
///
/// Daily bars are stamped at the exchange's midnight (a `/hmds/history` day
/// bar for 2023-12-11 starts at 05:00 UTC), so a bare date in a CSV must land
/// on the same instant for CSV and JSON copies of a day to line up and
/// de-duplicate. Midnight never falls in a New York DST gap; `None` only if a
/// future tz rule made it so.
pub(crate) fn ny_midnight(date: NaiveDate) -> Option<Timestamp> {
    New_York
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A CSV `time` field: epoch milliseconds, RFC 3339, or `YYYY-MM-DD`
/// (midnight New York, see [`ny_midnight`]).
///
/// An epoch value below 10^11 is read as seconds, as the history parser
/// does: in milliseconds it would be a date before 1973, never real data.
pub(crate) fn parse_time(s: &str) -> Result<Timestamp, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: i64 = s
            .parse()
            .map_err(|_| format!("time {s:?} is out of range"))?;
        let ms = if v < 100_000_000_000 { v * 1000 } else { v };
        return from_epoch_ms(ms).ok_or_else(|| format!("time {s:?} is out of range"));
    }
    if s.len() == 10 {
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return ny_midnight(date).ok_or_else(|| format!("no midnight in New York on {s}"));
        }
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("time {s:?} is not epoch milliseconds, RFC 3339 or YYYY-MM-DD"))
}

fn parse_decimal(name: &str, s: &str) -> Result<Decimal, String> {
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| format!("{name} {s:?} is not a number"))
}

/// Column positions, found by header name so column order and extra
/// columns do not matter.
#[derive(Debug, Clone, Copy)]
struct Columns {
    time: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
    conid: Option<usize>,
}

/// A CSV file read one row at a time into one reused record, so a file of
/// any size costs one row of memory.
pub(crate) struct CsvCursor {
    reader: csv::Reader<Box<dyn Read + Send>>,
    record: csv::StringRecord,
    cols: Columns,
    /// The conid of every row when forced or when there is no conid column.
    fixed: Option<Conid>,
    last: Option<(Timestamp, Conid)>,
}

impl CsvCursor {
    /// Open and read the header. `forced` beats a `conid` column, which
    /// beats `from_name`; a file with none of the three is an error.
    pub(crate) fn open(
        origin: &Origin,
        forced: Option<Conid>,
        from_name: Option<Conid>,
    ) -> Result<Self, DataError> {
        let file = origin.label();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(origin.reader()?);
        let headers = reader.headers().map_err(|e| csv_error(file, e))?;
        let find = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let need = |column: &'static str| {
            find(column).ok_or_else(|| DataError::MissingColumn {
                file: file.to_path_buf(),
                column,
            })
        };
        let cols = Columns {
            time: need("time")?,
            open: need("open")?,
            high: need("high")?,
            low: need("low")?,
            close: need("close")?,
            volume: need("volume")?,
            conid: find("conid"),
        };
        let fixed = match (forced, cols.conid) {
            (Some(c), _) => Some(c),
            (None, Some(_)) => None,
            (None, None) => Some(from_name.ok_or_else(|| DataError::NoConid {
                file: file.to_path_buf(),
            })?),
        };
        Ok(CsvCursor {
            reader,
            record: csv::StringRecord::new(),
            cols,
            fixed,
            last: None,
        })
    }

    /// True when rows carry their own conid.
    pub(crate) fn has_conid_column(&self) -> bool {
        self.fixed.is_none()
    }

    pub(crate) fn fixed_conid(&self) -> Option<Conid> {
        self.fixed
    }

    fn line(&self) -> u64 {
        self.record.position().map_or(0, |p| p.line())
    }

    fn bad_row(&self, file: &Path, reason: String) -> DataError {
        DataError::BadRow {
            file: file.to_path_buf(),
            line: self.line(),
            reason,
        }
    }

    fn field(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or("")
    }

    fn row_conid(&self, file: &Path) -> Result<Conid, DataError> {
        if let Some(c) = self.fixed {
            return Ok(c);
        }
        let s = self.cols.conid.map_or("", |i| self.field(i));
        s.parse()
            .map_err(|_| self.bad_row(file, format!("conid {s:?} is not an integer")))
    }

    /// Every conid in the `conid` column, reading the file to the end.
    pub(crate) fn conids(mut self, file: &Path) -> Result<BTreeSet<Conid>, DataError> {
        let mut out = BTreeSet::new();
        while self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| csv_error(file, e))?
        {
            out.insert(self.row_conid(file)?);
        }
        Ok(out)
    }

    /// The next row as a validated bar, or `None` at the end of the file.
    pub(crate) fn next_bar(&mut self, file: &Path) -> Result<Option<Bar>, DataError> {
        if !self
            .reader
            .read_record(&mut self.record)
            .map_err(|e| csv_error(file, e))?
        {
            return Ok(None);
        }
        let c = self.cols;
        let num = |name: &str, i: usize| {
            parse_decimal(name, self.field(i)).map_err(|r| self.bad_row(file, r))
        };
        let time = parse_time(self.field(c.time)).map_err(|r| self.bad_row(file, r))?;
        let conid = self.row_conid(file)?;
        let volume_field = self.field(c.volume);
        let bar = Bar {
            conid,
            time,
            open: num("open", c.open)?,
            high: num("high", c.high)?,
            low: num("low", c.low)?,
            close: num("close", c.close)?,
            // An empty volume is "unknown", as a history bar without `v`.
            volume: if volume_field.is_empty() {
                Decimal::ZERO
            } else {
                num("volume", c.volume)?
            },
        };
        bar.check().map_err(|e| self.bad_row(file, e.to_string()))?;
        let key = (time, conid);
        if let Some(prev) = self.last {
            if key < prev {
                let reason = if time < prev.0 {
                    format!(
                        "time {} is before the previous row's {}",
                        time.to_rfc3339(),
                        prev.0.to_rfc3339()
                    )
                } else {
                    format!(
                        "conid {conid} after conid {} at the same time {} (rows at one time must be in conid order)",
                        prev.1,
                        time.to_rfc3339()
                    )
                };
                return Err(DataError::Unsorted {
                    file: file.to_path_buf(),
                    line: self.line(),
                    reason,
                });
            }
        }
        self.last = Some(key);
        Ok(Some(bar))
    }
}

fn csv_error(file: &Path, source: csv::Error) -> DataError {
    DataError::Csv {
        file: file.to_path_buf(),
        line: source.position().map(|p| p.line()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn embedded(name: &str, text: &'static str) -> Origin {
        Origin::Embedded {
            name: name.into(),
            bytes: text.as_bytes(),
        }
    }

    fn read_all(origin: &Origin, forced: Option<Conid>) -> Result<Vec<Bar>, DataError> {
        let from_name = super::super::conid_from_path(origin.label());
        let mut c = CsvCursor::open(origin, forced, from_name)?;
        let mut out = Vec::new();
        while let Some(b) = c.next_bar(origin.label())? {
            out.push(b);
        }
        Ok(out)
    }

    #[test]
    fn time_formats() {
        let ms = parse_time("1702285200000").unwrap();
        assert_eq!(ms.to_rfc3339(), "2023-12-11T09:00:00+00:00");
        assert_eq!(parse_time("1702285200").unwrap(), ms);
        let t = parse_time("2023-12-11T04:00:00-05:00").unwrap();
        assert_eq!(t, ms);
        // Winter: EST, midnight is 05:00 UTC; summer: EDT, 04:00 UTC.
        assert_eq!(
            parse_time("2023-12-11").unwrap().to_rfc3339(),
            "2023-12-11T05:00:00+00:00"
        );
        assert_eq!(
            parse_time("2023-07-03").unwrap().to_rfc3339(),
            "2023-07-03T04:00:00+00:00"
        );
        // DST switch days: the 2 a.m. change leaves midnight intact.
        assert_eq!(
            parse_time("2024-03-10").unwrap().to_rfc3339(),
            "2024-03-10T05:00:00+00:00"
        );
        assert_eq!(
            parse_time("2024-11-03").unwrap().to_rfc3339(),
            "2024-11-03T04:00:00+00:00"
        );
        for bad in [
            "",
            "2023-13-01",
            "yesterday",
            "99999999999999999999999",
            "2023-12-11 09:00",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_columns_in_any_order_with_extras() {
        let o = embedded(
            "8314.csv",
            "volume,close,note,time,low,high,open\n100,10.5,x,2024-01-02,9.5,11,10\n, 11 ,y,2024-01-03,10,11.25,10.5\n",
        );
        let bars = read_all(&o, None).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].conid, Conid(8314));
        assert_eq!(
            (
                bars[0].open,
                bars[0].high,
                bars[0].low,
                bars[0].close,
                bars[0].volume
            ),
            (dec!(10), dec!(11), dec!(9.5), dec!(10.5), dec!(100))
        );
        assert_eq!(bars[1].volume, Decimal::ZERO);
        assert_eq!(bars[1].close, dec!(11));
    }

    #[test]
    fn csv_errors() {
        let o = embedded("1.csv", "time,open,high,low,close\n");
        assert!(matches!(
            read_all(&o, None),
            Err(DataError::MissingColumn {
                column: "volume",
                ..
            })
        ));

        let o = embedded("nodigits.csv", "time,open,high,low,close,volume\n");
        assert!(matches!(read_all(&o, None), Err(DataError::NoConid { .. })));
        assert!(read_all(&o, Some(Conid(5))).unwrap().is_empty());

        let o = embedded(
            "1.csv",
            "time,open,high,low,close,volume\n1,1,1,1,1,1\n2,1,1\n",
        );
        let e = read_all(&o, None).unwrap_err();
        assert!(matches!(e, DataError::Csv { line: Some(3), .. }), "{e}");
        assert!(e.to_string().starts_with("1.csv:3: "), "{e}");

        let o = embedded(
            "1.csv",
            "time,open,high,low,close,volume\n1,1,1,1,1,1\n2,1,1,1,abc,1\n",
        );
        let e = read_all(&o, None).unwrap_err();
        assert_eq!(e.to_string(), "1.csv:3: close \"abc\" is not a number");

        let o = embedded("1.csv", "time,open,high,low,close,volume\n1,1,1,1,1,-1\n");
        let e = read_all(&o, None).unwrap_err();
        assert!(matches!(e, DataError::BadRow { line: 2, .. }), "{e}");

        let o = embedded(
            "multi.csv",
            "time,conid,open,high,low,close,volume\n5,2,1,1,1,1,1\n5,1,1,1,1,1,1\n",
        );
        let e = read_all(&o, None).unwrap_err();
        assert!(matches!(e, DataError::Unsorted { line: 3, .. }), "{e}");

        let o = embedded(
            "multi.csv",
            "time,conid,open,high,low,close,volume\n5,x,1,1,1,1,1\n",
        );
        let e = read_all(&o, None).unwrap_err();
        assert_eq!(e.to_string(), "multi.csv:2: conid \"x\" is not an integer");
    }

    #[test]
    fn csv_conid_column_and_forced() {
        let text =
            "time,conid,open,high,low,close,volume\n5,2,1,1,1,1,1\n5,3,1,1,1,1,1\n6,2,1,1,1,1,1\n";
        let o = embedded("7.csv", text);
        let bars = read_all(&o, None).unwrap();
        let conids: Vec<_> = bars.iter().map(|b| b.conid.0).collect();
        assert_eq!(conids, [2, 3, 2]);
        let set = CsvCursor::open(&o, None, None)
            .unwrap()
            .conids(o.label())
            .unwrap();
        assert_eq!(set.into_iter().map(|c| c.0).collect::<Vec<_>>(), [2, 3]);
        // Forced wins over the column; same-time rows are then duplicates,
        // not disorder.
        let bars = read_all(&o, Some(Conid(9))).unwrap();
        assert!(bars.iter().all(|b| b.conid == Conid(9)));
    }
}
