//! Loading bars from saved history responses and CSV files.
//!
//! A backtest wants one time-ordered stream of bars, but data arrives as many
//! files: one saved response per `/hmds/history` or
//! `/iserver/marketdata/history` request (each bounded in size, often
//! overlapping the previous download), or CSV exports that can be large.
//! [`open`] turns any mix of them into one [`BarStream`]: a k-way merge ordered
//! by `(time, conid)` that drops duplicate bars and never holds the whole data
//! set in memory.
//!
//! Which instrument a file holds is not in the history responses themselves,
//! so it comes from the file: a `conid` CSV column, else the first run of
//! digits in the file name (`265598.json`, `hmds_265598_2023.json`,
//! `265598-part2.csv`), else an all-digit parent directory (`265598/bars.csv`),
//! unless the caller forces one with [`DataOptions::conid`]. Because the file
//! name is tried first, `265598/2019.json` is conid 2019: put the conid in the
//! file name when the name also carries digits.

mod sample;
mod source;
pub mod synthetic;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use cpapi::history::HistoryError;
use engine::model::{Bar, Conid, Contract, Timestamp};

pub use sample::{generate_sample, sample, SAMPLE_FILES};
pub use synthetic::SyntheticBars;

use source::{load_json, CsvCursor, Format, Origin};

/// Why bars could not be loaded. Every variant names the file, so a bad file
/// among hundreds can be found without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or directory could not be opened, listed or read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The path that failed (a file, or a directory being walked).
        file: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A saved history response that does not hold bars: the HTML page of a
    /// first `/hmds/history` call, an `{"error": ...}` body, broken JSON or a
    /// bad bar (the history error carries the bar index).
    #[error("{}: {source}", file.display())]
    History {
        /// The saved response.
        file: PathBuf,
        /// What is wrong with it.
        #[source]
        source: HistoryError,
    },
    /// The CSV itself is malformed (ragged rows, invalid UTF-8, ...).
    #[error("{}{}: {source}", file.display(), line_suffix(*line))]
    Csv {
        /// The CSV file.
        file: PathBuf,
        /// 1-based line (the header is line 1), when the reader knows it.
        line: Option<u64>,
        /// The CSV reader's error.
        #[source]
        source: csv::Error,
    },
    /// The CSV header lacks a column the reader needs.
    #[error("{}: CSV header has no {column:?} column (need time,open,high,low,close,volume)", file.display())]
    MissingColumn {
        /// The CSV file.
        file: PathBuf,
        /// The lowercase column name looked for.
        column: &'static str,
    },
    /// A CSV row that cannot be a bar: unparsable field or inconsistent prices.
    #[error("{}:{line}: {reason}", file.display())]
    BadRow {
        /// The CSV file.
        file: PathBuf,
        /// 1-based line of the row (the header is line 1).
        line: u64,
        /// Which field or which price relation is wrong.
        reason: String,
    },
    /// CSV rows must be in time order (and, at one instant, in conid order) so
    /// the file can be streamed instead of sorted in memory.
    #[error("{}:{line}: {reason}; CSV rows must be sorted by time", file.display())]
    Unsorted {
        /// The CSV file.
        file: PathBuf,
        /// 1-based line of the first row out of order.
        line: u64,
        /// The two keys that are out of order.
        reason: String,
    },
    /// A file without a conid column whose name and parent directory give
    /// no conid either, and no conid was forced.
    #[error("{}: cannot tell the conid: no conid column, no digits in the file name and the parent directory is not a number (name the file after the conid or force one)", file.display())]
    NoConid {
        /// The file whose bars have no contract.
        file: PathBuf,
    },
    /// The paths given (files and directories walked) hold no `.json` or
    /// `.csv` file.
    #[error("no .json or .csv data files found in {}", PathList(paths))]
    NoFiles {
        /// The paths as given.
        paths: Vec<PathBuf>,
    },
    /// A file named explicitly whose extension is neither `.json` nor
    /// `.csv` (inside a directory such files are skipped instead).
    #[error("{}: unsupported file type (expected .json or .csv)", file.display())]
    UnsupportedExtension {
        /// The file as given.
        file: PathBuf,
    },
}

fn line_suffix(line: Option<u64>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

struct PathList<'a>(&'a [PathBuf]);

impl fmt::Display for PathList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(no paths given)");
        }
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", p.display())?;
        }
        Ok(())
    }
}

/// How files are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataOptions {
    /// Treat every bar of every file as this conid, overriding file names and
    /// any `conid` CSV column: for a one-instrument run over files named by
    /// date.
    pub conid: Option<Conid>,
}

/// Open files and directories (walked recursively, `.json` and `.csv` only,
/// sorted by path) as one merged stream of bars.
///
/// Every file is checked before this returns (JSON responses parsed, CSV
/// headers read), so a wrong path or a saved error page fails here rather
/// than halfway through a run. Files earlier in `paths` (and, within a
/// directory, earlier by path) win when two hold the same bar.
pub fn open(paths: &[PathBuf], opts: &DataOptions) -> Result<BarStream, DataError> {
    let files = collect_files(paths)?;
    if files.is_empty() {
        return Err(DataError::NoFiles {
            paths: paths.to_vec(),
        });
    }
    BarStream::build(
        files.into_iter().map(|(p, f)| (Origin::File(p), f)),
        opts,
        &[],
    )
}

fn collect_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Format)>, DataError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|source| DataError::Io {
            file: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort_by(|a, b| a.0.cmp(&b.0));
            out.extend(found);
        } else {
            let format = Format::of(path)
                .ok_or_else(|| DataError::UnsupportedExtension { file: path.clone() })?;
            out.push((path.clone(), format));
        }
    }
    Ok(out)
}

/// Recursive directory walk. Symlinked directories are not followed, so a
/// link cycle cannot hang the loader; symlinked files are read.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Format)>) -> Result<(), DataError> {
    let io_err = |file: &Path| {
        let file = file.to_path_buf();
        move |source| DataError::Io { file, source }
    };
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err(&path))?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if let Some(format) = Format::of(&path) {
            let is_file = kind.is_file()
                || (kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()));
            if is_file {
                out.push((path, format));
            }
        }
    }
    Ok(())
}

/// The conid a file's name implies: first run of digits in the stem, else an
/// all-digit parent directory.
pub fn conid_from_path(path: &Path) -> Option<Conid> {
    let stem = path.file_stem()?.to_string_lossy();
    let digits: String = stem
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    if !digits.is_empty() {
        // A run too long for i64 is a date-time stamp or similar, not a conid.
        if let Ok(v) = digits.parse() {
            return Some(Conid(v));
        }
    }
    let parent = path.parent()?.file_name()?.to_str()?;
    if !parent.is_empty() && parent.bytes().all(|b| b.is_ascii_digit()) {
        return parent.parse().ok().map(Conid);
    }
    None
}

/// One merged, time-ordered, de-duplicated stream of bars from many files.
///
/// Ordered by `(time, conid)`; a second bar with the same conid and time (an
/// overlapping download) is dropped, keeping the one from the earliest file.
/// JSON files are read when the merge reaches their first bar and released
/// when exhausted; CSV files are streamed a row at a time. After an error the
/// stream ends.
pub struct BarStream {
    sources: Vec<Source>,
    heap: BinaryHeap<Pending>,
    last: Option<(Timestamp, Conid)>,
    symbols: BTreeMap<Conid, Option<String>>,
    error: Option<DataError>,
}

struct Source {
    origin: Origin,
    state: State,
}

enum State {
    /// A parsed-and-sorted response whose first bar waits in the heap; the
    /// rest are read again when that bar is reached, so untouched files cost
    /// no memory.
    Json {
        conid: Conid,
        first: Timestamp,
        rest: Option<std::vec::IntoIter<Bar>>,
    },
    Csv(Box<CsvCursor>),
    Done,
}

/// The next bar of one source. Ordered so `BinaryHeap` (a max-heap) pops the
/// smallest `(time, conid)` first, ties going to the earlier file.
struct Pending {
    bar: Bar,
    source: usize,
}

impl Pending {
    fn key(&self) -> (Timestamp, Conid, usize) {
        (self.bar.time, self.bar.conid, self.source)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

impl BarStream {
    /// `symbol_hints` name conids whose files carry no symbol (hmds responses
    /// never do), for the bundled sample.
    fn build(
        files: impl IntoIterator<Item = (Origin, Format)>,
        opts: &DataOptions,
        symbol_hints: &[(Conid, &str)],
    ) -> Result<Self, DataError> {
        let mut stream = BarStream {
            sources: Vec::new(),
            heap: BinaryHeap::new(),
            last: None,
            symbols: BTreeMap::new(),
            error: None,
        };
        for (origin, format) in files {
            let index = stream.sources.len();
            let from_name = opts.conid.or_else(|| conid_from_path(origin.label()));
            let (state, first) = match format {
                Format::Json => {
                    let conid = from_name.ok_or_else(|| DataError::NoConid {
                        file: origin.label().to_path_buf(),
                    })?;
                    let (bars, symbol) = load_json(&origin, conid)?;
                    stream.note(conid, symbol);
                    match bars.first() {
                        Some(&bar) => (
                            State::Json {
                                conid,
                                first: bar.time,
                                rest: None,
                            },
                            Some(bar),
                        ),
                        None => (State::Done, None),
                    }
                }
                Format::Csv => {
                    let mut cursor = CsvCursor::open(&origin, opts.conid, from_name)?;
                    if cursor.has_conid_column() {
                        // Read the conid column once up front so contracts()
                        // is complete before the run starts.
                        for conid in CsvCursor::open(&origin, None, None)?.conids(origin.label())? {
                            stream.note(conid, None);
                        }
                    } else if let Some(conid) = cursor.fixed_conid() {
                        stream.note(conid, None);
                    }
                    match cursor.next_bar(origin.label())? {
                        Some(bar) => (State::Csv(Box::new(cursor)), Some(bar)),
                        None => (State::Done, None),
                    }
                }
            };
            if let Some(bar) = first {
                stream.heap.push(Pending { bar, source: index });
            }
            stream.sources.push(Source { origin, state });
        }
        for &(conid, symbol) in symbol_hints {
            if let Some(slot @ None) = stream.symbols.get_mut(&conid) {
                *slot = Some(symbol.to_owned());
            }
        }
        Ok(stream)
    }

    /// A stream whose only item is `error`, for constructors that cannot
    /// return a `Result`.
    fn failed(error: DataError) -> Self {
        BarStream {
            sources: Vec::new(),
            heap: BinaryHeap::new(),
            last: None,
            symbols: BTreeMap::new(),
            error: Some(error),
        }
    }

    fn note(&mut self, conid: Conid, symbol: Option<String>) {
        let slot = self.symbols.entry(conid).or_insert(None);
        if slot.is_none() {
            *slot = symbol;
        }
    }

    /// One stock contract per conid in the data, sorted by conid. The symbol
    /// is the one an `/iserver/marketdata/history` response carried, else the
    /// conid as text: saved responses hold nothing else to go by.
    pub fn contracts(&self) -> Vec<Contract> {
        self.symbols
            .iter()
            .map(|(&conid, symbol)| {
                Contract::stock(conid, symbol.clone().unwrap_or_else(|| conid.to_string()))
            })
            .collect()
    }

    /// The conids in the data, sorted.
    pub fn conids(&self) -> BTreeSet<Conid> {
        self.symbols.keys().copied().collect()
    }

    /// The next bar of `index` after the one just popped.
    fn advance(&mut self, index: usize) -> Result<Option<Bar>, DataError> {
        let Some(src) = self.sources.get_mut(index) else {
            return Ok(None);
        };
        let next = match &mut src.state {
            State::Json { conid, first, rest } => {
                if rest.is_none() {
                    let (bars, _) = load_json(&src.origin, *conid)?;
                    // The first bar was served from the open-time parse; skip
                    // it (and any same-time duplicates) in the re-read.
                    let skip = bars.partition_point(|b| b.time <= *first);
                    let mut it = bars.into_iter();
                    if skip > 0 {
                        it.nth(skip - 1);
                    }
                    *rest = Some(it);
                }
                rest.as_mut().and_then(Iterator::next)
            }
            State::Csv(cursor) => cursor.next_bar(src.origin.label())?,
            State::Done => None,
        };
        if next.is_none() {
            // Frees a JSON file's bars or closes a CSV file as soon as done.
            src.state = State::Done;
        }
        Ok(next)
    }
}

impl Iterator for BarStream {
    type Item = Result<Bar, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.error.take() {
                return Some(Err(e));
            }
            let Pending { bar, source } = self.heap.pop()?;
            match self.advance(source) {
                Ok(Some(bar)) => self.heap.push(Pending { bar, source }),
                Ok(None) => {}
                Err(e) => {
                    // Yield the good bar first, then the error, then nothing.
                    self.error = Some(e);
                    self.heap.clear();
                    self.sources.clear();
                }
            }
            let key = (bar.time, bar.conid);
            if self.last == Some(key) {
                continue;
            }
            self.last = Some(key);
            return Some(Ok(bar));
        }
    }
}

impl std::iter::FusedIterator for BarStream {}

impl fmt::Debug for BarStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarStream")
            .field("files", &self.sources.len())
            .field("conids", &self.symbols.len())
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conid_from_file_names() {
        let c = |p: &str| conid_from_path(Path::new(p));
        assert_eq!(c("265598.json"), Some(Conid(265598)));
        assert_eq!(c("data/hmds_265598_2023.json"), Some(Conid(265598)));
        assert_eq!(c("265598-part2.csv"), Some(Conid(265598)));
        assert_eq!(c("x/8314/bars.csv"), Some(Conid(8314)));
        assert_eq!(c("x/8314/2019.json"), Some(Conid(2019)));
        assert_eq!(c("x/aapl/bars.csv"), None);
        assert_eq!(c("bars.csv"), None);
        assert_eq!(c("x/12a/bars.csv"), None);
        // Too long for a conid: falls through to the directory.
        assert_eq!(c("77/t99999999999999999999999.csv"), Some(Conid(77)));
    }

    #[test]
    fn errors_name_the_file() {
        let e = DataError::BadRow {
            file: "a/b.csv".into(),
            line: 7,
            reason: "bad".into(),
        };
        assert_eq!(e.to_string(), "a/b.csv:7: bad");
        let e = DataError::NoFiles {
            paths: vec!["x".into(), "y".into()],
        };
        assert_eq!(e.to_string(), "no .json or .csv data files found in x, y");
        let e = DataError::History {
            file: "h.json".into(),
            source: HistoryError::BadBar {
                index: 3,
                reason: "r".into(),
            },
        };
        assert_eq!(e.to_string(), "h.json: bar 3: r");
    }
}
