//! Parameter sweeps: a grid of parameter sets run in parallel on all cores,
//! ranked by one metric of the summary.

use std::path::Path;
use std::str::FromStr;

use rayon::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;

use engine::registry::Params;

/// Why a sweep could not be set up or written.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Not `name=start:end:step` (the whole spec as given).
    #[error("sweep {0:?} is not of the form name=start:end:step")]
    Syntax(String),
    /// A well-formed spec whose range is unusable: a bound or step that
    /// is not a number, a step not above zero, an end before the start, or
    /// a whole value beyond `i64`.
    #[error("sweep {spec:?}: {reason}")]
    Range {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An axis, or the grid of all axes, would have more than
    /// [`MAX_POINTS`] points (the count when it stopped, saturated).
    #[error("sweep grid has {0} points; the limit is 100000")]
    TooLarge(usize),
    /// The metric to rank by is not a field of the results.
    #[error("unknown metric {metric:?} to rank by; one of: {known}")]
    UnknownMetric {
        /// The name asked for.
        metric: String,
        /// The fields of the first successful result, comma-separated.
        known: String,
    },
    /// The results file could not be written.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// One swept parameter and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// The parameter name, as a strategy parameter key.
    pub name: String,
    /// Its values in order: TOML integers when start, end and step are whole,
    /// else exact decimal strings.
    pub values: Vec<toml::Value>,
}

impl SweepAxis {
    /// `fast=5:30:5` -> 5, 10, ..., 30 (end inclusive). Integers stay
    /// integers; anything with a decimal point is swept exactly as Decimal.
    pub fn parse(spec: &str) -> Result<Self, SweepError> {
        let (name, range) = spec
            .split_once('=')
            .ok_or_else(|| SweepError::Syntax(spec.to_owned()))?;
        let parts: Vec<&str> = range.split(':').map(str::trim).collect();
        let [a, b, s] = parts.as_slice() else {
            return Err(SweepError::Syntax(spec.to_owned()));
        };
        let bad = |reason: &str| SweepError::Range {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let num =
            |x: &str| Decimal::from_str(x).map_err(|_| bad(&format!("{x:?} is not a number")));
        let (start, end, step) = (num(a)?, num(b)?, num(s)?);
        if step <= Decimal::ZERO {
            return Err(bad("step must be positive"));
        }
        if end < start {
            return Err(bad("end is before start"));
        }
        let integral = [start, end, step].iter().all(|d| d.fract().is_zero());
        let mut values = Vec::new();
        let mut v = start;
        while v <= end {
            values.push(if integral {
                match i64::try_from(v) {
                    Ok(i) => toml::Value::Integer(i),
                    Err(_) => return Err(bad("value out of range")),
                }
            } else {
                toml::Value::String(v.normalize().to_string())
            });
            if values.len() > MAX_POINTS {
                return Err(SweepError::TooLarge(values.len()));
            }
            v += step;
        }
        Ok(SweepAxis {
            name: name.trim().to_owned(),
            values,
        })
    }
}

/// Most points a sweep runs (each is a whole backtest).
pub const MAX_POINTS: usize = 100_000;

/// The cartesian product of the axes, first axis varying slowest; more
/// than [`MAX_POINTS`] points is an error, checked before anything is
/// built.
pub fn grid(axes: &[SweepAxis]) -> Result<Vec<Params>, SweepError> {
    let points = axes.iter().try_fold(1usize, |n, a| {
        n.checked_mul(a.values.len())
            .filter(|&n| n <= MAX_POINTS)
            .ok_or(SweepError::TooLarge(n.saturating_mul(a.values.len())))
    })?;
    let mut out = Vec::with_capacity(points);
    out.push(Params::new());
    for axis in axes {
        let mut next = Vec::with_capacity(out.len() * axis.values.len());
        for p in &out {
            for v in &axis.values {
                let mut q = p.clone();
                q.set(&axis.name, v.clone());
                next.push(q);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Run `job` for every point of the grid in parallel (rayon, all cores).
/// Results keep grid order, so output does not depend on scheduling.
pub fn run<T, F>(grid: &[Params], job: F) -> Vec<(Params, Result<T, String>)>
where
    T: Send,
    F: Fn(&Params) -> Result<T, String> + Sync,
{
    grid.par_iter().map(|p| (p.clone(), job(p))).collect()
}

/// Metrics where smaller is better.
const LOWER_IS_BETTER: &[&str] = &["max_drawdown", "elapsed_ms"];

fn metric(v: &serde_json::Value, name: &str) -> Option<f64> {
    match v.get(name)? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn param_cell(v: Option<&toml::Value>) -> String {
    match v {
        Some(toml::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// Write `sweep.csv` ranked by `rank_by` (best first; failed runs last with
/// their error) and return one display line per run, in rank order.
pub fn write_csv<T: Serialize>(
    path: &Path,
    axes: &[SweepAxis],
    results: Vec<(Params, Result<T, String>)>,
    rank_by: &str,
) -> Result<Vec<String>, SweepError> {
    const COLUMNS: &[&str] = &[
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "trades",
        "win_rate",
        "profit_factor",
        "final_equity",
    ];
    let mut rows: Vec<(Params, Result<serde_json::Value, String>)> = results
        .into_iter()
        .map(|(p, r)| {
            let v = r.and_then(|s| serde_json::to_value(s).map_err(|e| e.to_string()));
            (p, v)
        })
        .collect();
    if let Some((_, Ok(v))) = rows.iter().find(|(_, r)| r.is_ok()) {
        if metric(v, rank_by).is_none() && v.get(rank_by).is_none() {
            let known = v
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            return Err(SweepError::UnknownMetric {
                metric: rank_by.to_owned(),
                known,
            });
        }
    }
    let lower = LOWER_IS_BETTER.contains(&rank_by);
    let key = |r: &Result<serde_json::Value, String>| -> Option<f64> {
        r.as_ref()
            .ok()
            .and_then(|v| metric(v, rank_by))
            .filter(|x| x.is_finite())
    };
    // Stable sort: ties keep grid order.
    rows.sort_by(|a, b| match (key(&a.1), key(&b.1)) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if lower {
                o
            } else {
                o.reverse()
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });

    let mut text = String::from("rank");
    for a in axes {
        text.push(',');
        text.push_str(&a.name);
    }
    for c in COLUMNS {
        text.push(',');
        text.push_str(c);
    }
    text.push_str(",error\n");
    let mut lines = Vec::with_capacity(rows.len());
    for (i, (p, r)) in rows.iter().enumerate() {
        let mut line = format!("{}", i + 1);
        let mut shown = Vec::new();
        for a in axes {
            let v = param_cell(p.table().get(&a.name));
            shown.push(format!("{}={}", a.name, v));
            line.push(',');
            line.push_str(&v);
        }
        match r {
            Ok(v) => {
                for c in COLUMNS {
                    line.push(',');
                    line.push_str(&v.get(*c).map(cell).unwrap_or_default());
                }
                line.push(',');
                shown.push(format!(
                    "{}={}",
                    rank_by,
                    v.get(rank_by).map(cell).unwrap_or_default()
                ));
            }
            Err(e) => {
                for _ in COLUMNS {
                    line.push(',');
                }
                line.push(',');
                line.push_str(&csv_escape(e));
                shown.push(format!("error: {e}"));
            }
        }
        text.push_str(&line);
        text.push('\n');
        lines.push(shown.join(" "));
    }
    std::fs::write(path, text).map_err(|source| SweepError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(lines)
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_parsing() {
        let a = SweepAxis::parse("fast=5:30:5").unwrap();
        assert_eq!(a.values.len(), 6);
        assert_eq!(a.values[5], toml::Value::Integer(30));
        let b = SweepAxis::parse("k=0.5:1:0.25").unwrap();
        assert_eq!(
            b.values,
            vec![
                toml::Value::String("0.5".into()),
                toml::Value::String("0.75".into()),
                toml::Value::String("1".into())
            ]
        );
        assert!(SweepAxis::parse("fast=5:30").is_err());
        assert!(SweepAxis::parse("fast=5:3:1").is_err());
        assert!(SweepAxis::parse("fast=5:30:0").is_err());
        assert!(SweepAxis::parse("fast").is_err());
    }

    #[test]
    fn grid_is_the_cartesian_product() {
        let axes = [
            SweepAxis::parse("a=1:2:1").unwrap(),
            SweepAxis::parse("b=10:30:10").unwrap(),
        ];
        let g = grid(&axes).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g[0].table().get("a"), Some(&toml::Value::Integer(1)));
        assert_eq!(g[5].table().get("b"), Some(&toml::Value::Integer(30)));
    }

    #[test]
    fn a_grid_too_large_is_refused_before_it_is_built() {
        // 2 001 x 2 001 points: each axis is allowed, the product is not.
        let axes = [
            SweepAxis::parse("a=0:2000:1").unwrap(),
            SweepAxis::parse("b=0:2000:1").unwrap(),
        ];
        match grid(&axes) {
            Err(SweepError::TooLarge(n)) => assert_eq!(n, 2001 * 2001),
            other => panic!("{:?}", other.map(|g| g.len())),
        }
        // A product that overflows usize is refused the same way.
        let huge: Vec<_> = (0..4)
            .map(|i| SweepAxis::parse(&format!("p{i}=1:100000:1")).unwrap())
            .collect();
        assert!(matches!(grid(&huge), Err(SweepError::TooLarge(_))));
    }

    #[derive(Serialize)]
    struct S {
        sharpe: f64,
        max_drawdown: f64,
    }

    #[test]
    fn ranking_and_csv() {
        let axes = [SweepAxis::parse("a=1:3:1").unwrap()];
        let g = grid(&axes).unwrap();
        let results = run(&g, |p| {
            let a = p.table().get("a").and_then(|v| v.as_integer()).unwrap_or(0);
            if a == 2 {
                return Err("boom, bad".into());
            }
            Ok(S {
                sharpe: a as f64,
                max_drawdown: 1.0 / a as f64,
            })
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        let lines = write_csv(&path, &axes, results, "sharpe").unwrap();
        assert_eq!(lines.len(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("rank,a,total_return"));
        assert!(rows[1].starts_with("1,3,"));
        assert!(rows[2].starts_with("2,1,"));
        assert!(rows[3].starts_with("3,2,") && rows[3].ends_with("\"boom, bad\""));
        let results = run(&g, |p| {
            let a = p.table().get("a").and_then(|v| v.as_integer()).unwrap_or(0);
            Ok(S {
                sharpe: 0.0,
                max_drawdown: a as f64,
            })
        });
        write_csv(&path, &axes, results, "max_drawdown").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with("1,1,"));
        let results = run(&g, |_| {
            Ok(S {
                sharpe: 0.0,
                max_drawdown: 0.0,
            })
        });
        assert!(matches!(
            write_csv(&path, &axes, results, "nope"),
            Err(SweepError::UnknownMetric { .. })
        ));
    }
}
