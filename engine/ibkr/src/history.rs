//! History downloader: one long range of bars from `/hmds/history`, in as
//! many requests as the step-size rules require, stitched into one series,
//! with every raw response saved where `ibflow backtest --data DIR` reads it.
//!
//! Chunking follows the spec's "HMDS Period & Bar Size" table: a period of
//! `1d` or `1w` takes minute to hour bars, `1m` minute to day bars, `1y` day
//! to week bars; and a request should return "only a few thousand bars", so
//! a chunk holds at most [`MAX_BARS_PER_REQUEST`] bars of wall-clock time.
//! The largest chunk that satisfies both is used.
//!
//! Assumption (the spec is ambiguous about `startTime`/`direction`): a
//! request's `startTime` is the END of its chunk and the bars cover `period`
//! before it, as `/iserver/marketdata/history` behaves on the real gateway.
//! The stitcher does not depend on it: bars are keyed by time, duplicates
//! dropped (first response wins), and the result is cut to the requested
//! range, so overlapping or shifted chunks still give one clean series.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Duration as ChronoDuration;
use futures_util::stream::{self, StreamExt};

use crate::error::IbkrError;
use crate::rest::{HistoryRequest, IbkrClient};
use engine::model::{Bar, Conid, Timestamp};

/// Upper bound on bars per request ("a few thousand", spec).
pub const MAX_BARS_PER_REQUEST: i64 = 5000;

/// A bar size or period, parsed: `1min`, `5mins`, `1h`, `2hrs`, `1d`, `1w`,
/// `1m` (month), `1y`, `60S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// How many units (positive).
    pub count: i64,
    /// The unit the count is of.
    pub unit: Unit,
}

/// Time unit of a [`Span`]. Ordered from shortest to longest, which is how
/// the step-size rules compare bar sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// Seconds (`S`).
    Sec,
    /// Minutes (`min`).
    Min,
    /// Hours (`h`, `hrs`).
    Hour,
    /// Days (`d`).
    Day,
    /// Weeks (`w`).
    Week,
    /// Months (`m`), counted as 30 days.
    Month,
    /// Years (`y`), counted as 365 days.
    Year,
}

impl Unit {
    fn seconds(self) -> i64 {
        match self {
            Unit::Sec => 1,
            Unit::Min => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
            Unit::Week => 7 * 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 365 * 86_400,
        }
    }
}

impl Span {
    /// Parse `1min`, `5mins`, `1h`, `1hrs`, `1d`, `1w`, `1m`, `1y`, `30S`.
    pub fn parse(s: &str) -> Result<Span, IbkrError> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (n, u) = t.split_at(split);
        let count: i64 = n
            .parse()
            .map_err(|_| IbkrError::Config(format!("bad bar/period {s:?}: no leading count")))?;
        let unit = match u {
            "S" | "s" | "sec" | "secs" => Unit::Sec,
            "min" | "mins" => Unit::Min,
            "h" | "hr" | "hrs" | "hour" | "hours" => Unit::Hour,
            "d" | "D" => Unit::Day,
            "w" | "W" => Unit::Week,
            "m" | "M" => Unit::Month,
            "y" | "Y" => Unit::Year,
            _ => {
                return Err(IbkrError::Config(format!(
                    "bad bar/period {s:?}: unknown unit {u:?}"
                )))
            }
        };
        if count <= 0 {
            return Err(IbkrError::Config(format!(
                "bad bar/period {s:?}: count must be positive"
            )));
        }
        Ok(Span { count, unit })
    }

    /// Length in seconds (a month is 30 days, a year 365): for sizing chunks,
    /// not for calendar arithmetic.
    pub fn seconds(self) -> i64 {
        self.count * self.unit.seconds()
    }

    /// The spelling `/hmds/history` takes (`1min`, `2hrs`, `1d`): hours as
    /// `hrs`, as in the spec's `/hmds/history` example (`bar=1hrs`).
    pub fn wire(self) -> String {
        let u = match self.unit {
            Unit::Sec => "S",
            Unit::Min => "min",
            Unit::Hour => "hrs",
            Unit::Day => "d",
            Unit::Week => "w",
            Unit::Month => "m",
            Unit::Year => "y",
        };
        format!("{}{}", self.count, u)
    }
}

/// The chunk period to request `bar` bars in: the largest of 1y, 1m, 1w, 1d
/// whose bar range (spec table) admits `bar` and that holds at most
/// [`MAX_BARS_PER_REQUEST`] bars.
pub fn chunk_for(bar: Span) -> Result<Span, IbkrError> {
    // (period, smallest bar unit, largest bar unit) from the spec's table.
    const RULES: &[(Unit, Unit, Unit)] = &[
        (Unit::Year, Unit::Day, Unit::Week),
        (Unit::Month, Unit::Min, Unit::Day),
        (Unit::Week, Unit::Min, Unit::Hour),
        (Unit::Day, Unit::Min, Unit::Hour),
    ];
    for (period, lo, hi) in RULES {
        let p = Span {
            count: 1,
            unit: *period,
        };
        if bar.unit >= *lo && bar.unit <= *hi && p.seconds() / bar.seconds() <= MAX_BARS_PER_REQUEST
        {
            return Ok(p);
        }
    }
    Err(IbkrError::Config(format!(
        "bar size {} is not supported by /hmds/history for downloads",
        bar.wire()
    )))
}

/// Plan the requests covering `[end - total, end)`.
pub fn plan(
    conid: Conid,
    bar: Span,
    total: Span,
    end: Timestamp,
    outside_rth: bool,
) -> Result<Vec<HistoryRequest>, IbkrError> {
    let chunk = chunk_for(bar)?;
    let n = (total.seconds() + chunk.seconds() - 1) / chunk.seconds();
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let chunk_end = end - ChronoDuration::seconds(i * chunk.seconds());
        let mut r = HistoryRequest::new(conid, &chunk.wire(), &bar.wire());
        r.start_time = Some(chunk_end.format("%Y%m%d-%H:%M:%S").to_string());
        r.outside_rth = outside_rth;
        out.push(r);
    }
    // Oldest first, so saved files read in time order.
    out.reverse();
    Ok(out)
}

/// What a download produced.
#[derive(Debug, Clone)]
pub struct Download {
    /// Requests sent (one per chunk).
    pub requests: usize,
    /// The raw responses saved, oldest chunk first; empty when no directory
    /// was given.
    pub files: Vec<PathBuf>,
    /// The stitched series, sorted, de-duplicated, cut to the range.
    pub bars: Vec<Bar>,
}

/// Fetch `total` of `bar` bars for `conid` ending at `end`; write each raw
/// response to `out` (when given) as `hmds_{conid}_{chunkend}.json`.
pub async fn download(
    client: &IbkrClient,
    conid: Conid,
    bar: &str,
    total: &str,
    end: Timestamp,
    outside_rth: bool,
    out: Option<&Path>,
) -> Result<Download, IbkrError> {
    let bar = Span::parse(bar)?;
    let total_span = Span::parse(total)?;
    let reqs = plan(conid, bar, total_span, end, outside_rth)?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| IbkrError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    // One request first: it absorbs the first-call 404 warm-up, so the
    // concurrent rest do not all hit it.
    let mut bodies = Vec::with_capacity(reqs.len());
    if let Some(first) = reqs.first() {
        bodies.push((first.clone(), client.hmds_history_raw(first).await?));
    }
    let rest: Vec<_> = stream::iter(reqs.iter().skip(1).cloned())
        .map(|r| async move {
            let b = client.hmds_history_raw(&r).await;
            (r, b)
        })
        .buffered(client.config().pacing.max_concurrent_history.max(1))
        .collect()
        .await;
    for (r, b) in rest {
        bodies.push((r, b?));
    }
    let start = end - ChronoDuration::seconds(total_span.seconds());
    let mut series: BTreeMap<Timestamp, Bar> = BTreeMap::new();
    let mut files = Vec::new();
    for (req, body) in &bodies {
        let parsed = cpapi::history::parse_history(conid, body).map_err(|e| IbkrError::Decode {
            endpoint: "/hmds/history".into(),
            message: e.to_string(),
            snippet: crate::error::snippet(body),
        })?;
        for b in parsed.bars {
            if b.time >= start && b.time < end {
                series.entry(b.time).or_insert(b);
            }
        }
        if let Some(dir) = out {
            let stamp: String = req
                .start_time
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let path = dir.join(format!("hmds_{}_{}.json", conid.0, stamp));
            std::fs::write(&path, body).map_err(|e| IbkrError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            files.push(path);
        }
    }
    Ok(Download {
        requests: bodies.len(),
        files,
        bars: series.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn spans_and_chunks() {
        assert_eq!(
            Span::parse("1min").unwrap(),
            Span {
                count: 1,
                unit: Unit::Min
            }
        );
        assert_eq!(Span::parse("2hrs").unwrap().seconds(), 7200);
        assert_eq!(Span::parse("1h").unwrap().wire(), "1hrs");
        assert!(Span::parse("min").is_err());
        assert!(Span::parse("1x").is_err());
        assert!(Span::parse("0d").is_err());
        // 1min: 1w is 10080 bars, too many; one day is 1440.
        assert_eq!(
            chunk_for(Span::parse("1min").unwrap()).unwrap().wire(),
            "1d"
        );
        assert_eq!(
            chunk_for(Span::parse("5min").unwrap()).unwrap().wire(),
            "1w"
        );
        assert_eq!(chunk_for(Span::parse("1h").unwrap()).unwrap().wire(), "1m");
        assert_eq!(chunk_for(Span::parse("1d").unwrap()).unwrap().wire(), "1y");
        assert!(chunk_for(Span::parse("30S").unwrap()).is_err());
    }

    #[test]
    fn plan_covers_the_range() {
        let end = chrono::Utc.with_ymd_and_hms(2024, 3, 8, 21, 0, 0).unwrap();
        let p = plan(
            Conid(1),
            Span::parse("1min").unwrap(),
            Span::parse("1w").unwrap(),
            end,
            false,
        )
        .unwrap();
        assert_eq!(p.len(), 7);
        assert!(p.iter().all(|r| r.period == "1d" && r.bar == "1min"));
        assert_eq!(p[6].start_time.as_deref(), Some("20240308-21:00:00"));
        assert_eq!(p[0].start_time.as_deref(), Some("20240302-21:00:00"));
        let p = plan(
            Conid(1),
            Span::parse("1d").unwrap(),
            Span::parse("3y").unwrap(),
            end,
            false,
        )
        .unwrap();
        assert_eq!(p.len(), 3);
    }
}
