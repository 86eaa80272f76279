//! The history a live run warms its strategies up on: the last
//! `Strategy::warmup_bars` completed bars of each contract, at the period
//! live bars are built with, from `/iserver/marketdata/history`.
//!
//! One request per contract (the endpoint serves at most 1000 points, and
//! a warm-up asks for far fewer). The spec's bar sizes are `1min`, `2min`,
//! `3min`, `5min`, `10min`, `15min`, `30min`, `1h`, `2h`, `3h`, `4h`, `8h`,
//! `1d`, `1w`, `1m`; a live bar period that is none of them has no history
//! to warm up on, and the strategies start cold (they can tell with
//! `Context::is_warming_up`).
//!
//! Assumption (the spec is silent): the period requested is calendar time,
//! so it is sized for the bars wanted with room for nights, weekends and
//! holidays (6.5 trading hours a day, 5 days in 7, three days more), and
//! the answer is cut to the last bars wanted. The real gateway includes the
//! bar in progress as the last one; a bar that has not ended by `now` is
//! dropped, so strategies see only completed bars, as live.

use std::time::Duration;

use chrono::TimeDelta;

use crate::error::IbkrError;
use crate::rest::{HistoryRequest, IbkrClient};
use engine::model::{Bar, Conid, Timestamp};

/// Regular trading hours in a day, in seconds (US equities: 6.5 h).
const TRADING_SECONDS_PER_DAY: u64 = 23_400;

/// The `bar` value of `/iserver/marketdata/history` for bars of `period`,
/// if the spec lists one.
pub fn bar_size(period: Duration) -> Option<&'static str> {
    Some(match period.as_secs() {
        60 => "1min",
        120 => "2min",
        180 => "3min",
        300 => "5min",
        600 => "10min",
        900 => "15min",
        1_800 => "30min",
        3_600 => "1h",
        7_200 => "2h",
        10_800 => "3h",
        14_400 => "4h",
        28_800 => "8h",
        86_400 => "1d",
        604_800 => "1w",
        _ => return None,
    })
}

/// The request for the last `bars` bars of `period` of `conid`, or `None`
/// when the period has no bar size (module doc). The `period` asked covers
/// them with room for closed hours, within the spec's bounds.
pub fn request(conid: Conid, period: Duration, bars: usize) -> Option<HistoryRequest> {
    let bar = bar_size(period)?;
    let wanted = u64::try_from(bars).unwrap_or(u64::MAX).max(1);
    let span = match period.as_secs() {
        604_800 => format!("{}w", wanted.saturating_add(1).min(792)),
        s => {
            // Trading days needed, then calendar days (5 in 7), plus three.
            let per_day = (TRADING_SECONDS_PER_DAY / s).max(1);
            let days = wanted.div_ceil(per_day);
            let calendar = days.saturating_mul(7).div_ceil(5).saturating_add(3);
            format!("{}d", calendar.min(1000))
        }
    };
    Some(HistoryRequest::new(conid, &span, bar))
}

/// The completed bars of the `bars` most recent of each of `conids`, at
/// `period`, oldest first across contracts: what `LiveEngine::warm_up`
/// takes. A contract whose history cannot be had is logged and skipped
/// (its strategies start colder); the others still warm up.
pub async fn fetch(
    client: &IbkrClient,
    conids: &[Conid],
    period: Duration,
    bars: usize,
    now: Timestamp,
) -> Vec<Bar> {
    if bars == 0 {
        return Vec::new();
    }
    let Ok(length) = TimeDelta::from_std(period) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &conid in conids {
        let Some(req) = request(conid, period, bars) else {
            tracing::warn!(
                period_s = period.as_secs(),
                "no history bar size matches the live bar period: strategies start cold"
            );
            return Vec::new();
        };
        match one(client, &req, length, bars, now).await {
            Ok(got) => {
                tracing::info!(%conid, bars = got.len(), wanted = bars, "warm-up history");
                out.extend(got);
            }
            Err(e) => tracing::error!(
                %conid,
                error = %e,
                "warm-up history unavailable: this contract's strategies start cold"
            ),
        }
    }
    out.sort_by_key(|b| b.time);
    out
}

async fn one(
    client: &IbkrClient,
    req: &HistoryRequest,
    length: TimeDelta,
    bars: usize,
    now: Timestamp,
) -> Result<Vec<Bar>, IbkrError> {
    let answer = client.iserver_history(req).await?;
    let mut done: Vec<Bar> = answer
        .bars
        .into_iter()
        .filter(|b| {
            b.time
                .checked_add_signed(length)
                .is_some_and(|end| end <= now)
        })
        .collect();
    done.sort_by_key(|b| b.time);
    done.dedup_by_key(|b| b.time);
    let skip = done.len().saturating_sub(bars);
    Ok(done.split_off(skip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_sizes_are_the_specs() {
        assert_eq!(bar_size(Duration::from_secs(60)), Some("1min"));
        assert_eq!(bar_size(Duration::from_secs(3_600)), Some("1h"));
        assert_eq!(bar_size(Duration::from_secs(86_400)), Some("1d"));
        assert_eq!(bar_size(Duration::from_secs(45)), None);
        assert_eq!(bar_size(Duration::from_secs(1_200)), None);
    }

    #[test]
    fn the_period_covers_closed_hours_within_bounds() {
        // 50 one-minute bars: one trading day, two calendar days, plus 3.
        let r = request(Conid(1), Duration::from_secs(60), 50).unwrap();
        assert_eq!((r.period.as_str(), r.bar.as_str()), ("5d", "1min"));
        // 20 daily bars: 28 calendar days, plus 3.
        let r = request(Conid(1), Duration::from_secs(86_400), 20).unwrap();
        assert_eq!(r.period, "31d");
        // Absurd counts stay within the spec's 1000 days and 792 weeks.
        let r = request(Conid(1), Duration::from_secs(86_400), usize::MAX).unwrap();
        assert_eq!(r.period, "1000d");
        let r = request(Conid(1), Duration::from_secs(604_800), usize::MAX).unwrap();
        assert_eq!(r.period, "792w");
        assert!(request(Conid(1), Duration::from_secs(7), 10).is_none());
    }
}
