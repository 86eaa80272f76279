//! The simulator's shared state, the replay clock and the pump that feeds
//! completed bars to the exchange.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use engine::model::{Bar, Conid, Timestamp};

use super::config::{GatewayConfig, Instrument};
use super::desk::Desk;
use super::events::EventBook;
use super::faults::{Faults, RequestLog};
use super::market::Market;
use super::pacing::Pacing;
use super::reset::Schedule;
use super::session::Session;
use super::GatewayError;
use backtest::data::{self, DataOptions};

/// What the websockets are told. Every socket gets every push and keeps
/// what its subscriptions ask for.
#[derive(Debug, Clone)]
pub(crate) enum Push {
    /// One `sor` order object.
    Order(Value),
    /// One `str` execution object.
    Trade(Value),
    /// Brokerage authentication changed (`sts`).
    Sts { authenticated: bool },
    /// The current quote fields of a contract (sockets send only changes).
    Quote {
        conid: Conid,
        fields: BTreeMap<String, String>,
        updated: i64,
    },
    /// The account's PnL changed: the whole `spl` message.
    Pnl(Value),
    /// The session ended (logout) or a test drops the sockets: they close.
    Disconnect,
    /// A text frame sent as is (fault injection: malformed messages).
    Raw(String),
    /// An `ntf` notification: its `args` (a server prompt or information).
    Ntf(Value),
    /// A `blt` bulletin: its `args` (`id`, `message`).
    Blt(Value),
}

/// Replay time = `base_sim` + real time since `base_real` x `speed`.
/// Speed changes and jumps re-base, so replay time never runs backwards.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    base_sim: Timestamp,
    base_real: Instant,
    speed: f64,
}

impl Clock {
    pub(crate) fn new(start: Timestamp, speed: f64) -> Self {
        Clock {
            base_sim: start,
            base_real: Instant::now(),
            speed,
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        let secs = self.base_real.elapsed().as_secs_f64() * self.speed;
        // Clamp so an absurd speed cannot overflow the timestamp: 10^6 days
        // is far past any data set.
        let ms = (secs * 1000.0).clamp(0.0, 8.64e13) as i64;
        self.base_sim + TimeDelta::milliseconds(ms)
    }

    pub(crate) fn set_speed(&mut self, speed: f64) {
        if !speed.is_finite() || speed < 0.0 {
            return;
        }
        self.base_sim = self.now();
        self.base_real = Instant::now();
        self.speed = speed;
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        let now = self.now();
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::zero());
        self.base_sim = now + by;
        self.base_real = Instant::now();
    }
}

pub(crate) struct State {
    pub session: Session,
    pub clock: Clock,
    pub market: Market,
    pub desk: Desk,
    pub pacing: Pacing,
    pub faults: Faults,
    /// What clients sent (while recording) and how many websockets opened.
    pub log: RequestLog,
    /// The daily reset and the session's 24 hours, on the replay clock.
    pub schedule: Schedule,
}

pub(crate) struct Shared {
    pub cfg: GatewayConfig,
    pub instruments: BTreeMap<Conid, Instrument>,
    /// ForecastEx markets and the YES/NO pairing of their contracts.
    pub forecast: EventBook,
    state: Mutex<State>,
    pub events: broadcast::Sender<Push>,
    /// Set when the simulator can no longer serve truthfully (the replay
    /// ticker keeps failing): every request then answers 503 with it.
    failure: Mutex<Option<String>>,
    /// The open connections, for the admin API's restart.
    pub conns: Arc<super::server::ConnControl>,
}

/// Ids unique across runs (issue 12: with a reused store, execution ids
/// restarted at `sim.1` and order ids at 1000000000, so a later run's
/// different trades collided with an earlier run's).
///
/// * Order ids are numeric strings, as on the real gateway: they start at
///   the start time in milliseconds since 1970 times 1000 (about 1.8e15,
///   inside the integers a JSON double holds exactly), so a run started
///   later starts above every id of a run started earlier unless that run
///   placed 1000 orders per millisecond of its life.
/// * Execution ids are free-form on the real gateway
///   (`0000e0d5.6576fd38.01.01`): `sim.` + a run tag of 8 hex digits
///   (start time and process randomness hashed) + `.` + the exchange's own
///   sequence number.
///
/// Returns (first order id, run tag).
pub(crate) fn run_ids() -> (u64, String) {
    use std::hash::{BuildHasher, Hasher};
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX / 1000);
    let first_order = ms.saturating_mul(1000).max(1_000_000_000);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(since.as_nanos());
    h.write_u32(std::process::id());
    let tag = format!("{:08x}", h.finish() as u32);
    (first_order, tag)
}

impl Shared {
    pub(crate) fn new(mut cfg: GatewayConfig) -> Result<Self, GatewayError> {
        let stream = if cfg.data.is_empty() {
            data::sample()
        } else {
            data::open(&cfg.data, &DataOptions::default())?
        };
        let contracts = stream.contracts();
        let mut bars: Vec<Bar> = stream.collect::<Result<_, _>>()?;
        if bars.is_empty() {
            return Err(GatewayError::Config("the data holds no bars".to_owned()));
        }
        let forecast = EventBook::new(cfg.event_markets.clone()).map_err(GatewayError::Config)?;
        let synthesized = forecast.synthesize(&bars);
        bars.extend(synthesized);
        let mut instruments: BTreeMap<Conid, Instrument> = BTreeMap::new();
        for c in &contracts {
            instruments.insert(
                c.conid,
                Instrument::stock(c.conid, &c.symbol, &c.symbol, "NASDAQ"),
            );
        }
        for i in forecast.instruments() {
            instruments.insert(i.conid, i);
        }
        for i in &cfg.instruments {
            instruments.insert(i.conid, i.clone());
        }
        let market = Market::new(bars);
        let start = cfg.start.unwrap_or_else(|| market.first_time());
        cfg.exchange.account = cfg.account.clone();
        let (first_order_id, run_tag) = run_ids();
        let desk = Desk::new(
            cfg.exchange.clone(),
            &instruments,
            forecast.pairing().clone(),
            cfg.initial_cash,
            first_order_id,
            run_tag,
        );
        let state = State {
            session: Session::new(cfg.idle_timeout),
            clock: Clock::new(start, cfg.speed),
            market,
            desk,
            pacing: Pacing::default(),
            faults: Faults::default(),
            log: RequestLog::default(),
            schedule: Schedule::new(
                cfg.reset_region,
                cfg.reset_warning,
                cfg.session_max_age,
                start,
            ),
        };
        let (events, _) = broadcast::channel(4096);
        Ok(Shared {
            cfg,
            instruments,
            forecast,
            state: Mutex::new(state),
            events,
            failure: Mutex::new(None),
            conns: Arc::default(),
        })
    }

    /// Declare the simulator failed: logged at ERROR once, and every
    /// request from now on answers 503 with `why`.
    pub(crate) fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            tracing::error!("sim gateway: failed, answering 503 from now on: {why}");
            *f = Some(why);
        }
    }

    /// Why the simulator failed, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The state lock. Handlers hold it only for synchronous work, never
    /// across an await; a panic while holding it does not wedge the server.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn instrument(&self, conid: Conid) -> Option<&Instrument> {
        self.instruments.get(&conid)
    }

    /// Bring the exchange up to the replay clock: feed every bar that has
    /// completed, publish the resulting order updates and executions.
    pub(crate) fn pump(&self, st: &mut State) {
        let now = st.clock.now();
        let due = st.market.take_due(now);
        for (end, bar) in due {
            st.desk.on_bar(&bar, end, self);
        }
        st.desk.release_staged(now, self);
    }

    pub(crate) fn push(&self, p: Push) {
        // No receivers is normal (no websocket open).
        let _ = self.events.send(p);
    }

    pub(crate) fn expire_session(&self) {
        let mut st = self.lock();
        if st.session.expire() {
            self.push(Push::Sts {
                authenticated: false,
            });
        }
    }

    pub(crate) fn trigger_competing(&self) {
        let mut st = self.lock();
        st.session.compete_elsewhere();
        self.push(Push::Sts {
            authenticated: false,
        });
    }

    pub(crate) fn advance(&self, by: Duration) {
        let mut st = self.lock();
        st.clock.advance(by);
        self.pump(&mut st);
        self.check_schedule(&mut st);
    }

    /// IBKR's daily reset as a client sees it: every websocket closes and
    /// the brokerage session times out (`ssodh/init` recovers).
    pub(crate) fn daily_reset(&self, st: &mut State) {
        self.push(Push::Disconnect);
        if st.session.expire() {
            self.push(Push::Sts {
                authenticated: false,
            });
        }
        st.schedule.deauthenticated();
    }

    /// Send a `blt` bulletin to every websocket; `id` defaults to a fresh
    /// one. Returns the id.
    pub(crate) fn bulletin(&self, st: &mut State, id: Option<String>, message: &str) -> String {
        let id = id.unwrap_or_else(|| st.schedule.bulletin_id());
        self.push(Push::Blt(
            serde_json::json!({ "id": id, "message": message }),
        ));
        id
    }

    /// Do what the replay clock's schedule asks at its current time: warn
    /// of the next reset, reset, expire a session past its maximum age.
    pub(crate) fn check_schedule(&self, st: &mut State) {
        let now = st.clock.now();
        let due = st.schedule.step(now, st.session.authenticated());
        if let (Some(at), Some(region)) = (due.warn, st.schedule.region()) {
            let text = super::reset::warning_text(region, at);
            self.bulletin(st, None, &text);
        }
        if due.reset {
            tracing::info!("sim gateway: daily reset / session expiry at replay time {now}");
            self.daily_reset(st);
        }
    }
}

/// How many ticks in a row may fail before the simulator declares itself
/// failed ([`Shared::failure`]) instead of going on.
const TICKS_FAILING_BEFORE_GIVING_UP: u32 = 50;

/// The text of a caught panic.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Run `f`, turning a panic into its text: for the long-lived loops (the
/// replay ticker, a websocket) that must outlive one failing step.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| panic_text(p.as_ref()))
}

/// Background loop: pump the replay clock, push quote changes, notice idle
/// session timeouts.
///
/// A failure inside one tick never ends the loop silently (issue 12: a
/// panic in the exchange used to kill this task and leave the simulated
/// exchange wedged while `/tickle` went on answering 200). A tick that
/// panics is caught and logged at ERROR, and the loop goes on; after
/// [`TICKS_FAILING_BEFORE_GIVING_UP`] failing ticks in a row the simulator
/// marks itself failed, and every request is answered 503 with the reason,
/// so clients and operators see it.
pub(crate) async fn run_ticker(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.cfg.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: BTreeMap<Conid, BTreeMap<String, String>> = BTreeMap::new();
    let mut last_pnl = Value::Null;
    let mut failing = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let step = guarded(|| {
            let mut guard = shared.lock();
            let st = &mut *guard;
            if st.session.check_idle(Instant::now()) {
                shared.push(Push::Sts {
                    authenticated: false,
                });
            }
            shared.check_schedule(st);
            super::portfolio::refresh(st, &shared);
            let now = st.clock.now();
            (
                st.market.all_quote_fields(now, &shared.instruments),
                super::portfolio::spl_message(st, &shared.cfg.account),
            )
        });
        let (quotes, pnl) = match step {
            Ok(x) => {
                failing = 0;
                x
            }
            Err(why) => {
                failing += 1;
                tracing::error!(
                    "sim gateway: replay tick failed ({failing} in a row): {why}; going on"
                );
                if failing >= TICKS_FAILING_BEFORE_GIVING_UP {
                    shared.fail(format!(
                        "the replay ticker failed {failing} times in a row: {why}"
                    ));
                }
                continue;
            }
        };
        if pnl != last_pnl {
            last_pnl = pnl.clone();
            shared.push(Push::Pnl(pnl));
        }
        for (conid, fields, updated) in quotes {
            if last.get(&conid) != Some(&fields) {
                last.insert(conid, fields.clone());
                shared.push(Push::Quote {
                    conid,
                    fields,
                    updated,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_with_its_text() {
        assert_eq!(guarded(|| 7), Ok(7));
        assert_eq!(guarded(|| -> u8 { panic!("boom") }), Err("boom".to_owned()));
        let n = 3;
        assert_eq!(
            guarded(|| -> u8 { panic!("boom {n}") }),
            Err("boom 3".to_owned())
        );
    }

    #[test]
    fn a_failed_simulator_says_so_once() {
        let sh = Shared::new(GatewayConfig::default()).unwrap();
        assert_eq!(sh.failure(), None);
        sh.fail("first".to_owned());
        sh.fail("second".to_owned());
        assert_eq!(sh.failure().as_deref(), Some("first"));
    }
}
