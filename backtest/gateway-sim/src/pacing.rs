//! The spec's "Pacing Limitations": a global 10 requests per second, the
//! per-endpoint rows of [`cpapi::endpoints`], 429 `{"error": ...}` when a
//! limit is exceeded, and a penalty box (15 minutes by default) during which
//! every request from that address gets 429.
//!
//! The rows and the matching of a request to its row are the ones the
//! client's pacer uses ([`endpoints::lookup`]); this module only counts. The
//! simulator enforces the exact limits, with no margin: it plays the
//! gateway, and the client's margin exists to stay clear of exactly these.
//!
//! Rates are sliding windows per client address and row (`GET` and
//! `POST /tickle` are one row); requests that were refused do not count.
//! The history pool (`/iserver/marketdata/history` and `/hmds/history`)
//! allows 5 requests in flight at once rather than a rate. Endpoints the
//! simulator does not serve still count against the global limit.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use cpapi::endpoints::{self, EndpointId, Pacing as Limit, Pool};

use super::state::Shared;
use super::wire::error;

/// Request history per client address.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    global: HashMap<IpAddr, VecDeque<Instant>>,
    endpoint: HashMap<(IpAddr, EndpointId), VecDeque<Instant>>,
    in_flight: HashMap<(IpAddr, Pool), usize>,
    penalty: HashMap<IpAddr, Instant>,
}

fn within(q: &mut VecDeque<Instant>, now: Instant, per: Duration) -> usize {
    while q.front().is_some_and(|t| now.duration_since(*t) >= per) {
        q.pop_front();
    }
    q.len()
}

impl Pacing {
    /// Admit a request, or say why not. On admission the request is counted
    /// and, for a concurrency-limited endpoint, its slot is returned.
    fn admit(
        &mut self,
        ip: IpAddr,
        method: &str,
        path: &str,
        global_per_second: u32,
        penalty: Duration,
    ) -> Result<Option<(IpAddr, Pool)>, &'static str> {
        let now = Instant::now();
        if let Some(until) = self.penalty.get(&ip) {
            if now < *until {
                return Err("Too many requests: in the penalty box");
            }
            self.penalty.remove(&ip);
        }
        let g = self.global.entry(ip).or_default();
        if within(g, now, Duration::from_secs(1)) >= global_per_second as usize {
            self.penalty.insert(ip, now + penalty);
            return Err("Too many requests: global limit of 10 per second");
        }
        let mut slot = None;
        if let Some(row) = endpoints::lookup(method, path) {
            match row.endpoint.pacing {
                Limit::Global => {}
                Limit::Rate(rate) => {
                    let q = self.endpoint.entry((ip, row.id)).or_default();
                    if within(q, now, rate.per) >= rate.count {
                        self.penalty.insert(ip, now + penalty);
                        return Err("Too many requests: endpoint limit");
                    }
                    q.push_back(now);
                }
                Limit::Concurrent(pool) => {
                    let c = self.in_flight.entry((ip, pool)).or_default();
                    if *c >= pool.size() {
                        self.penalty.insert(ip, now + penalty);
                        return Err("Too many requests: concurrent request limit");
                    }
                    *c += 1;
                    slot = Some((ip, pool));
                }
            }
        }
        self.global.entry(ip).or_default().push_back(now);
        Ok(slot)
    }

    fn release(&mut self, slot: (IpAddr, Pool)) {
        if let Some(c) = self.in_flight.get_mut(&slot) {
            *c = c.saturating_sub(1);
        }
    }
}

pub(crate) async fn limit(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let cfg = &sh.cfg.pacing;
    if !cfg.enabled {
        return next.run(req).await;
    }
    let admitted = sh.lock().pacing.admit(
        peer.ip(),
        req.method().as_str(),
        req.uri().path(),
        cfg.global_per_second,
        cfg.penalty,
    );
    match admitted {
        Err(why) => error(StatusCode::TOO_MANY_REQUESTS, why),
        Ok(slot) => {
            let resp = next.run(req).await;
            if let Some(s) = slot {
                sh.lock().pacing.release(s);
            }
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_and_post_tickle_are_one_endpoint() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(10);
        assert!(p.admit(ip, "POST", "/v1/api/tickle", 10, pen).is_ok());
        assert!(p.admit(ip, "GET", "/v1/api/tickle/", 10, pen).is_err());
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(p.admit(other, "POST", "/v1/api/tickle", 10, pen).is_ok());
        assert!(p.admit(other, "POST", "/v1/api/tickle", 10, pen).is_err());
    }

    #[test]
    fn limits_and_penalty_box() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(50);
        assert!(p.admit(ip, "GET", "/tickle", 10, pen).is_ok());
        assert!(p.admit(ip, "GET", "/tickle", 10, pen).is_err());
        // In the box: even an unlimited endpoint is refused.
        assert!(p.admit(ip, "GET", "/iserver/accounts", 10, pen).is_err());
        std::thread::sleep(Duration::from_millis(1100));
        for _ in 0..10 {
            assert!(p.admit(ip, "GET", "/iserver/accounts", 10, pen).is_ok());
        }
        assert!(p.admit(ip, "GET", "/iserver/accounts", 10, pen).is_err());
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(p.admit(other, "GET", "/iserver/accounts", 10, pen).is_ok());
    }

    #[test]
    fn history_is_limited_by_concurrency() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(10);
        let path = "/iserver/marketdata/history";
        let slots: Vec<_> = (0..5)
            .map(|_| p.admit(ip, "GET", path, 100, pen).unwrap().unwrap())
            .collect();
        assert!(p.admit(ip, "GET", path, 100, pen).is_err());
        std::thread::sleep(Duration::from_millis(20));
        p.release(slots[0]);
        assert!(p.admit(ip, "GET", path, 100, pen).unwrap().is_some());
    }

    #[test]
    fn both_history_endpoints_share_the_pool() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(10);
        let mut slots = Vec::new();
        for i in 0..5 {
            let path = if i % 2 == 0 {
                "/hmds/history"
            } else {
                "/iserver/marketdata/history"
            };
            slots.push(p.admit(ip, "GET", path, 100, pen).unwrap().unwrap());
        }
        assert!(p.admit(ip, "GET", "/hmds/history", 100, pen).is_err());
        std::thread::sleep(Duration::from_millis(20));
        p.release(slots[0]);
        assert!(p
            .admit(ip, "GET", "/hmds/history", 100, pen)
            .unwrap()
            .is_some());
    }
}
