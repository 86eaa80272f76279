//! The bounded plot series and the `equity.png` renderer.
//!
//! The series never holds more than `capacity` points whatever the number
//! of observations: observations are grouped in buckets of `stride`
//! consecutive calls, each bucket keeps one representative, and when the
//! buffer is full neighbouring points are merged pairwise and the stride
//! doubles. The representative of a bucket is its lowest equity, and a
//! merge keeps the point with the deeper drawdown, so troughs (and the
//! maximum drawdown in particular) survive decimation instead of being
//! sampled away. Every plotted point is a real observation.
//!
//! The PNG carries no text: plotters' text rendering needs a font feature
//! (`ttf` pulls in system font discovery) that the backtest crate does not
//! enable. Axis labels and scales are written in `report.html` instead.

use std::path::Path;

use engine::model::Timestamp;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::ReportError;

/// One observation kept for the plot: its time, its equity and the running
/// peak at that time (so the drawdown can be drawn without keeping the
/// whole series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotPoint {
    /// Time of the observation.
    pub time: Timestamp,
    /// Account equity at that time.
    pub equity: Decimal,
    /// Highest equity up to that time (at least the initial cash).
    pub peak: Decimal,
}

impl PlotPoint {
    /// True when `self` is further below its peak than `other`
    /// (`e1 / p1 < e2 / p2`, cross-multiplied: peaks are positive).
    fn deeper_than(&self, other: &PlotPoint) -> bool {
        match (
            self.equity.checked_mul(other.peak),
            other.equity.checked_mul(self.peak),
        ) {
            (Some(a), Some(b)) => a < b,
            _ => self.equity < other.equity,
        }
    }
}

/// Decimated, bounded equity series.
#[derive(Debug, Clone)]
pub struct PlotBuffer {
    points: Vec<PlotPoint>,
    capacity: usize,
    stride: u64,
    pending: Option<PlotPoint>,
    pending_n: u64,
}

impl PlotBuffer {
    /// `capacity` must be at least 2 (checked by the recorder). The storage
    /// is allocated once, here.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(2);
        PlotBuffer {
            points: Vec::with_capacity(capacity),
            capacity,
            stride: 1,
            pending: None,
            pending_n: 0,
        }
    }

    /// Adds one observation: a comparison and a counter increment, except
    /// once per bucket (a push) and once per `capacity / 2` buckets (a
    /// merge).
    #[inline]
    pub fn push(&mut self, point: PlotPoint) {
        match &mut self.pending {
            Some(p) => {
                if engine::num::lt(point.equity, p.equity) {
                    *p = point;
                }
            }
            None => self.pending = Some(point),
        }
        self.pending_n += 1;
        if self.pending_n >= self.stride {
            self.flush_pending();
        }
    }

    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.points.push(p);
        }
        self.pending_n = 0;
        if self.points.len() >= self.capacity {
            self.halve();
        }
    }

    #[cold]
    fn halve(&mut self) {
        let n = self.points.len();
        let mut w = 0;
        let mut r = 0;
        while r < n {
            let mut keep = self.points[r];
            if r + 1 < n && self.points[r + 1].deeper_than(&keep) {
                keep = self.points[r + 1];
            }
            self.points[w] = keep;
            w += 1;
            r += 2;
        }
        self.points.truncate(w);
        self.stride = self.stride.saturating_mul(2);
    }

    /// Number of points currently held (at most the capacity).
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True before the first observation.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.pending.is_none()
    }

    /// The configured maximum number of points.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Allocated storage, for tests that check nothing grows.
    pub fn allocated(&self) -> usize {
        self.points.capacity()
    }

    /// Observations per stored point.
    pub fn stride(&self) -> u64 {
        self.stride
    }

    /// All points including the partial last bucket.
    pub fn into_points(mut self) -> Vec<PlotPoint> {
        if let Some(p) = self.pending.take() {
            if self.points.len() >= self.capacity {
                self.halve();
            }
            self.points.push(p);
        }
        self.points
    }
}

/// Width and height of `equity.png` in pixels.
pub const PNG_SIZE: (u32, u32) = (1000, 600);

/// Value ranges of the drawn series, reported in the HTML since the image
/// has no axis labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotScales {
    /// Left end of the time axis; `None` without observations.
    pub start: Option<Timestamp>,
    /// Right end of the time axis; `None` without observations.
    pub end: Option<Timestamp>,
    /// Bottom of the equity axis: the lowest equity or the initial cash,
    /// whichever is lower, minus a 5% margin.
    pub equity_min: f64,
    /// Top of the equity axis: the highest equity or the initial cash, plus a
    /// 5% margin.
    pub equity_max: f64,
    /// Lowest drawdown axis value (a negative fraction, e.g. -0.25).
    pub drawdown_min: f64,
    /// Points drawn (after decimation).
    pub points: usize,
}

const EQUITY_COLOR: RGBColor = RGBColor(31, 119, 180);
const DRAWDOWN_COLOR: RGBColor = RGBColor(214, 39, 40);
const AXIS_COLOR: RGBColor = RGBColor(60, 60, 60);
const REFERENCE_COLOR: RGBColor = RGBColor(170, 170, 170);

fn plot_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// Draws the equity curve (top two thirds, with a grey line at the initial
/// cash) and the drawdown as a filled area below zero (bottom third) into
/// `path`. The horizontal axis spans `span` (the first and last equity
/// observations, which decimation may not have kept), or the points' own
/// range when `None`.
pub fn render_png(
    path: &Path,
    points: &[PlotPoint],
    initial_cash: Decimal,
    span: Option<(Timestamp, Timestamp)>,
) -> Result<PlotScales, ReportError> {
    let initial = initial_cash.to_f64().unwrap_or(0.0);
    let span = span.or_else(|| Some((points.first()?.time, points.last()?.time)));
    let t0 = span.map(|s| s.0);
    let xs: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|p| {
            let x = t0.map_or(0.0, |t0| (p.time - t0).num_milliseconds() as f64 / 1000.0);
            let e = p.equity.to_f64().unwrap_or(0.0);
            let peak = p.peak.to_f64().unwrap_or(0.0);
            let dd = if peak > 0.0 && e < peak {
                -(peak - e) / peak
            } else {
                0.0
            };
            (x, e, dd)
        })
        .collect();

    let x_max = span
        .map_or(0.0, |(a, b)| (b - a).num_milliseconds() as f64 / 1000.0)
        .max(1e-9);
    let (mut e_min, mut e_max) = (initial, initial);
    let mut dd_min = 0.0f64;
    for &(_, e, dd) in &xs {
        e_min = e_min.min(e);
        e_max = e_max.max(e);
        dd_min = dd_min.min(dd);
    }
    let pad = ((e_max - e_min) * 0.05).max(e_max.abs() * 1e-4).max(1e-9);
    let (y0, y1) = (e_min - pad, e_max + pad);
    let dd_floor = if dd_min < 0.0 { dd_min * 1.05 } else { -0.01 };

    let root = BitMapBackend::new(path, PNG_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (top, bottom) = root.split_vertically(PNG_SIZE.1 * 2 / 3);

    let mut eq_chart = ChartBuilder::on(&top)
        .margin(12)
        .build_cartesian_2d(0.0..x_max, y0..y1)
        .map_err(plot_err)?;
    eq_chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, initial), (x_max, initial)],
            REFERENCE_COLOR.stroke_width(1),
        )))
        .map_err(plot_err)?;
    eq_chart
        .draw_series(LineSeries::new(
            xs.iter().map(|&(x, e, _)| (x, e)),
            EQUITY_COLOR.stroke_width(2),
        ))
        .map_err(plot_err)?;
    eq_chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, y0), (x_max, y1)],
            AXIS_COLOR.stroke_width(1),
        )))
        .map_err(plot_err)?;

    let mut dd_chart = ChartBuilder::on(&bottom)
        .margin(12)
        .build_cartesian_2d(0.0..x_max, dd_floor..0.0)
        .map_err(plot_err)?;
    dd_chart
        .draw_series(
            AreaSeries::new(
                xs.iter().map(|&(x, _, dd)| (x, dd)),
                0.0,
                DRAWDOWN_COLOR.mix(0.35),
            )
            .border_style(DRAWDOWN_COLOR.stroke_width(1)),
        )
        .map_err(plot_err)?;
    dd_chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, dd_floor), (x_max, 0.0)],
            AXIS_COLOR.stroke_width(1),
        )))
        .map_err(plot_err)?;

    root.present().map_err(plot_err)?;
    Ok(PlotScales {
        start: span.map(|s| s.0),
        end: span.map(|s| s.1),
        equity_min: y0,
        equity_max: y1,
        drawdown_min: dd_floor,
        points: points.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn point(i: i64, equity: Decimal) -> PlotPoint {
        PlotPoint {
            time: chrono::Utc
                .timestamp_opt(1_700_000_000 + i * 60, 0)
                .single()
                .expect("valid"),
            equity,
            peak: dec!(1000),
        }
    }

    #[test]
    fn stays_bounded_and_keeps_the_trough() {
        let mut buf = PlotBuffer::new(10);
        for i in 0..10_007i64 {
            let equity = if i == 7_777 { dec!(500) } else { dec!(1000) };
            buf.push(point(i, equity));
            assert!(buf.len() <= 10);
        }
        assert_eq!(buf.allocated(), 10);
        let pts = buf.into_points();
        assert!(pts.len() <= 10);
        assert!(pts.iter().any(|p| p.equity == dec!(500)));
        assert!(pts.windows(2).all(|w| w[0].time < w[1].time));
    }

    #[test]
    fn small_series_is_kept_whole() {
        let mut buf = PlotBuffer::new(100);
        for i in 0..50 {
            buf.push(point(i, Decimal::from(i)));
        }
        assert_eq!(buf.stride(), 1);
        assert_eq!(buf.into_points().len(), 50);
    }
}
