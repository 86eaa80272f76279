//! The spec's "Pacing Limitations": a global 10 requests per second, the
//! per-endpoint table, 429 `{"error": ...}` when a limit is exceeded, and a
//! penalty box (15 minutes by default) during which every request from that
//! address gets 429.
//!
//! Rates are sliding windows per client address and endpoint; requests that
//! were refused do not count. `/iserver/marketdata/history` allows 5
//! requests in flight at once rather than a rate. Endpoints the simulator
//! does not serve still count against the global limit.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::state::Shared;
use super::wire::error;

#[derive(Debug, Clone, Copy)]
enum Limit {
    Rate { n: usize, per: Duration },
    Concurrent(usize),
}

/// `(method, path pattern, limit)`; `{x}` matches one path segment.
const TABLE: &[(&str, &str, Limit)] = &[
    ("GET", "/fyi/unreadnumber", SEC1),
    ("GET", "/fyi/settings", SEC1),
    ("POST", "/fyi/settings/{typecode}", SEC1),
    ("GET", "/fyi/disclaimer/{typecode}", SEC1),
    ("PUT", "/fyi/disclaimer/{typecode}", SEC1),
    ("GET", "/fyi/deliveryoptions", SEC1),
    ("PUT", "/fyi/deliveryoptions/email", SEC1),
    ("POST", "/fyi/deliveryoptions/device", SEC1),
    ("DELETE", "/fyi/deliveryoptions/{deviceId}", SEC1),
    ("GET", "/fyi/notifications", SEC1),
    ("GET", "/fyi/notifications/more", SEC1),
    ("PUT", "/fyi/notifications/{notificationId}", SEC1),
    ("GET", "/iserver/account/orders", SEC5),
    ("GET", "/iserver/account/pnl/partitioned", SEC5),
    ("GET", "/iserver/account/trades", SEC5),
    ("GET", "/iserver/marketdata/history", Limit::Concurrent(5)),
    (
        "GET",
        "/iserver/marketdata/snapshot",
        Limit::Rate {
            n: 10,
            per: Duration::from_secs(1),
        },
    ),
    ("GET", "/iserver/scanner/params", MIN15),
    ("POST", "/iserver/scanner/run", SEC1),
    ("POST", "/pa/performance", MIN15),
    ("POST", "/pa/summary", MIN15),
    ("POST", "/pa/transactions", MIN15),
    ("GET", "/portfolio/accounts", SEC5),
    ("GET", "/portfolio/subaccounts", SEC5),
    (
        "GET",
        "/sso/validate",
        Limit::Rate {
            n: 1,
            per: Duration::from_secs(60),
        },
    ),
    ("GET", "/tickle", SEC1),
];

const SEC1: Limit = Limit::Rate {
    n: 1,
    per: Duration::from_secs(1),
};
const SEC5: Limit = Limit::Rate {
    n: 1,
    per: Duration::from_secs(5),
};
const MIN15: Limit = Limit::Rate {
    n: 1,
    per: Duration::from_secs(15 * 60),
};

fn matches(pattern: &str, path: &str) -> bool {
    let mut a = pattern.split('/');
    let mut b = path.split('/');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with('{') || p == s => {}
            _ => return false,
        }
    }
}

fn rule_for(method: &Method, path: &str) -> Option<(usize, Limit)> {
    TABLE
        .iter()
        .enumerate()
        .find(|(_, (m, p, _))| *m == method.as_str() && matches(p, path))
        .map(|(i, (_, _, l))| (i, *l))
}

/// Request history per client address.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    global: HashMap<IpAddr, VecDeque<Instant>>,
    endpoint: HashMap<(IpAddr, usize), VecDeque<Instant>>,
    in_flight: HashMap<(IpAddr, usize), usize>,
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
        method: &Method,
        path: &str,
        global_per_second: u32,
        penalty: Duration,
    ) -> Result<Option<(IpAddr, usize)>, &'static str> {
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
        if let Some((i, limit)) = rule_for(method, path) {
            match limit {
                Limit::Rate { n, per } => {
                    let q = self.endpoint.entry((ip, i)).or_default();
                    if within(q, now, per) >= n {
                        self.penalty.insert(ip, now + penalty);
                        return Err("Too many requests: endpoint limit");
                    }
                    q.push_back(now);
                }
                Limit::Concurrent(n) => {
                    let c = self.in_flight.entry((ip, i)).or_default();
                    if *c >= n {
                        self.penalty.insert(ip, now + penalty);
                        return Err("Too many requests: concurrent request limit");
                    }
                    *c += 1;
                    slot = Some((ip, i));
                }
            }
        }
        self.global.entry(ip).or_default().push_back(now);
        Ok(slot)
    }

    fn release(&mut self, slot: (IpAddr, usize)) {
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
    let path = req.uri().path();
    let path = path.strip_prefix("/v1/api").unwrap_or(path).to_owned();
    let admitted = sh.lock().pacing.admit(
        peer.ip(),
        req.method(),
        &path,
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
    fn table_lookup() {
        assert!(matches("/fyi/settings/{typecode}", "/fyi/settings/12"));
        assert!(!matches("/fyi/settings/{typecode}", "/fyi/settings"));
        assert!(rule_for(&Method::GET, "/tickle").is_some());
        assert!(rule_for(&Method::POST, "/tickle").is_none());
        assert!(rule_for(&Method::GET, "/iserver/accounts").is_none());
    }

    #[test]
    fn limits_and_penalty_box() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(50);
        assert!(p.admit(ip, &Method::GET, "/tickle", 10, pen).is_ok());
        assert!(p.admit(ip, &Method::GET, "/tickle", 10, pen).is_err());
        // In the box: even an unlimited endpoint is refused.
        assert!(p
            .admit(ip, &Method::GET, "/iserver/accounts", 10, pen)
            .is_err());
        std::thread::sleep(Duration::from_millis(1100));
        for _ in 0..10 {
            assert!(p
                .admit(ip, &Method::GET, "/iserver/accounts", 10, pen)
                .is_ok());
        }
        assert!(p
            .admit(ip, &Method::GET, "/iserver/accounts", 10, pen)
            .is_err());
        let other: IpAddr = [127, 0, 0, 2].into();
        assert!(p
            .admit(other, &Method::GET, "/iserver/accounts", 10, pen)
            .is_ok());
    }

    #[test]
    fn history_is_limited_by_concurrency() {
        let mut p = Pacing::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let pen = Duration::from_millis(10);
        let path = "/iserver/marketdata/history";
        let slots: Vec<_> = (0..5)
            .map(|_| p.admit(ip, &Method::GET, path, 100, pen).unwrap().unwrap())
            .collect();
        assert!(p.admit(ip, &Method::GET, path, 100, pen).is_err());
        std::thread::sleep(Duration::from_millis(20));
        p.release(slots[0]);
        assert!(p.admit(ip, &Method::GET, path, 100, pen).unwrap().is_some());
    }
}
