//! Strategy state through the context (saved, restored, checked by name,
//! refused when too large or no longer fitting) and the dispatcher's
//! warm-up (history in time order, nothing emitted, portfolio and clock
//! untouched).
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_engine as engine;

use chrono::{Duration, TimeZone, Utc};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};

use engine::dispatch::Dispatcher;
use engine::model::{Bar, Conid, ExecSide, Execution, Timestamp};
use engine::portfolio::Portfolio;
use engine::strategy::{
    Context, Intent, SavedState, StateError, Strategy, TimerId, MAX_STATE_BYTES,
};

const A: Conid = Conid(5);
const B: Conid = Conid(6);

fn t(min: i64) -> Timestamp {
    Utc.with_ymd_and_hms(2024, 5, 1, 14, 0, 0).unwrap() + Duration::minutes(min)
}

fn bar(conid: Conid, min: i64, close: Decimal) -> Bar {
    Bar {
        conid,
        time: t(min),
        open: close,
        high: close,
        low: close,
        close,
        volume: dec!(1),
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
struct Memo {
    bars: u32,
    last: Option<Decimal>,
}

/// Counts bars into its memo and saves it on every bar; records what it
/// read at start and what each callback saw.
#[derive(Default)]
struct Counter {
    name: &'static str,
    warmup: usize,
    memo: Memo,
    at_start: Option<Result<Option<Memo>, String>>,
    seen: Vec<(Conid, Timestamp, bool, Timestamp)>,
    /// Try to trade and set a timer on every bar.
    greedy: bool,
}

impl Strategy for Counter {
    fn name(&self) -> &str {
        self.name
    }
    fn warmup_bars(&self) -> usize {
        self.warmup
    }
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        let read = ctx.saved_state::<Memo>().map_err(|e| e.to_string());
        if let Ok(Some(m)) = &read {
            self.memo = m.clone();
        }
        self.at_start = Some(read);
    }
    fn on_bar(&mut self, ctx: &mut Context<'_>, bar: &Bar) {
        self.seen
            .push((bar.conid, bar.time, ctx.is_warming_up(), ctx.now()));
        self.memo.bars += 1;
        self.memo.last = Some(bar.close);
        ctx.save_state(&self.memo).unwrap();
        if self.greedy {
            ctx.buy(bar.conid, dec!(1));
            ctx.set_timer(ctx.now() + Duration::seconds(1));
        }
    }
    fn on_timer(&mut self, _ctx: &mut Context<'_>, _timer: TimerId) {
        panic!("no timer may fire in these tests");
    }
}

fn counter(name: &'static str, warmup: usize) -> Counter {
    Counter {
        name,
        warmup,
        ..Counter::default()
    }
}

#[test]
fn saved_state_is_taken_once_and_handed_back_to_the_same_strategy() {
    // First run: two strategies save on each bar.
    let mut d = Dispatcher::new(
        vec![counter("a", 0), counter("b", 0)],
        Portfolio::new(dec!(1000)),
    );
    d.start();
    assert!(!d.has_dirty_states(), "nothing saved yet");
    assert!(d.take_dirty_states().is_empty());
    d.on_bar(&bar(A, 0, dec!(10)));
    d.on_bar(&bar(A, 1, dec!(11)));
    assert!(d.has_dirty_states());
    let saved = d.take_dirty_states();
    // The latest save of each strategy only, by index, with its name.
    assert_eq!(
        saved,
        vec![
            SavedState {
                index: 0,
                name: "a".into(),
                json: r#"{"bars":2,"last":"11"}"#.into()
            },
            SavedState {
                index: 1,
                name: "b".into(),
                json: r#"{"bars":2,"last":"11"}"#.into()
            },
        ]
    );
    assert!(!d.has_dirty_states());
    assert!(d.take_dirty_states().is_empty(), "taken once");
    // A failed write puts a state back.
    d.mark_state_dirty(1);
    let again = d.take_dirty_states();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].index, 1);

    // Second run, in another order: "b" now at index 0, "a" at 1, and a
    // third strategy "c". Only a name match at the same index is handed
    // over: the state of index 0 ("a") is not "b"'s.
    let mut d2 = Dispatcher::new(
        vec![counter("b", 0), counter("a", 0), counter("c", 0)],
        Portfolio::new(dec!(1000)),
    );
    let restored = d2.restore_states(vec![
        saved[0].clone(),
        saved[1].clone(),
        SavedState {
            index: 1,
            name: "a".into(),
            json: r#"{"bars":7,"last":null}"#.into(),
        },
        SavedState {
            index: 9,
            name: "c".into(),
            json: "{}".into(),
        },
    ]);
    assert_eq!(restored, 1);
    d2.start();
    let s = d2.strategies();
    assert_eq!(s[0].at_start, Some(Ok(None)), "b does not get a's state");
    assert_eq!(
        s[1].at_start,
        Some(Ok(Some(Memo {
            bars: 7,
            last: None
        })))
    );
    assert_eq!(s[2].at_start, Some(Ok(None)), "index 9 is nobody's");
    assert_eq!(d2.state_json(0), None);
    assert_eq!(d2.state_json(1), Some(r#"{"bars":7,"last":null}"#));
    // Restoring is not saving: nothing to persist until a strategy saves.
    assert!(!d2.has_dirty_states());
    d2.on_bar(&bar(A, 2, dec!(12)));
    let json = d2.state_json(1).unwrap();
    assert_eq!(json, r#"{"bars":8,"last":"12"}"#, "continues from 7");
}

#[test]
fn a_state_that_no_longer_fits_is_an_error_not_a_panic() {
    for json in [r#"{"bars":"many"}"#, "not json at all", "[1,2,3]", ""] {
        let mut d = Dispatcher::new(vec![counter("a", 0)], Portfolio::new(dec!(1000)));
        assert_eq!(
            d.restore_states(vec![SavedState {
                index: 0,
                name: "a".into(),
                json: json.into(),
            }]),
            1
        );
        d.start();
        let read = d.strategies()[0].at_start.clone().unwrap();
        let err = read.unwrap_err();
        assert!(err.contains("does not fit"), "{json:?}: {err}");
        // The strategy saves afresh; the new state replaces the bad one.
        d.on_bar(&bar(A, 0, dec!(10)));
        assert_eq!(d.state_json(0), Some(r#"{"bars":1,"last":"10"}"#));
    }
}

/// Saves what it is told to in `on_start`, reports the outcome.
struct Saver<T: Serialize + Send>(T, Option<Result<(), String>>);

impl<T: Serialize + Send> Strategy for Saver<T> {
    fn on_start(&mut self, ctx: &mut Context<'_>) {
        self.1 = Some(ctx.save_state(&self.0).map_err(|e| e.to_string()));
    }
}

#[test]
fn too_large_or_unserializable_state_is_refused_and_the_old_one_stands() {
    let big = "x".repeat(MAX_STATE_BYTES);
    let mut d = Dispatcher::new(vec![Saver(big, None)], Portfolio::new(dec!(1)));
    d.restore_states(vec![SavedState {
        index: 0,
        name: d.strategies()[0].name().to_owned(),
        json: r#""old""#.into(),
    }]);
    d.start();
    let out = d.strategies()[0].1.clone().unwrap();
    assert!(out.unwrap_err().contains("more than the 1048576 allowed"));
    assert_eq!(d.state_json(0), Some(r#""old""#));
    assert!(!d.has_dirty_states());

    // A map with non-string keys has no JSON form.
    let mut m = std::collections::BTreeMap::new();
    m.insert((1, 2), 3);
    let mut d = Dispatcher::new(vec![Saver(m, None)], Portfolio::new(dec!(1)));
    d.start();
    let out = d.strategies()[0].1.clone().unwrap();
    assert!(out.unwrap_err().contains("does not serialize"));
    assert_eq!(d.state_json(0), None);

    // Just under the limit (the two quotes count) is fine.
    let fits = "y".repeat(MAX_STATE_BYTES - 2);
    let mut d = Dispatcher::new(vec![Saver(fits, None)], Portfolio::new(dec!(1)));
    d.start();
    assert_eq!(d.strategies()[0].1, Some(Ok(())));
    assert_eq!(d.take_dirty_states()[0].json.len(), MAX_STATE_BYTES);
}

#[test]
fn a_bare_context_keeps_no_state() {
    let pf = Portfolio::new(dec!(1));
    let orders = Default::default();
    let events = Default::default();
    let mut outbox = Default::default();
    let mut ctx = Context::new(t(0), 0, &pf, &orders, &events, &mut outbox);
    assert!(matches!(ctx.save_state(&1), Err(StateError::Unavailable)));
    assert_eq!(ctx.saved_state::<u32>().unwrap(), None);
    assert!(!ctx.is_warming_up());
}

#[test]
fn warm_up_delivers_history_in_time_order_and_emits_nothing() {
    let mut d = Dispatcher::new(
        vec![
            Counter {
                greedy: true,
                ..counter("wants3", 3)
            },
            counter("wants0", 0),
            Counter {
                greedy: true,
                ..counter("wants9", 9)
            },
        ],
        Portfolio::new(dec!(1000)),
    );
    // An open position marked at 50.
    d.on_execution(&Execution {
        execution_id: "x1".into(),
        order_id: None,
        order_ref: None,
        account: "U1".into(),
        conid: A,
        side: ExecSide::Bought,
        size: dec!(2),
        price: dec!(50),
        commission: Decimal::ZERO,
        net_amount: dec!(100),
        time: t(-100),
    });
    d.start();
    let now = d.now();
    let equity = d.portfolio().equity();
    let cash = d.portfolio().cash();
    assert_eq!(d.warmup_bars(), 9);
    // History out of order, two contracts: A at minutes 0..5, B at 2..4.
    let mut history: Vec<Bar> = (0..5)
        .map(|m| bar(A, m, dec!(10) + Decimal::from(m)))
        .collect();
    history.extend((2..4).map(|m| bar(B, m, dec!(100))));
    history.reverse();
    let calls = d.warm_up(&history);
    // wants3: the last 3 of A (2, 3, 4) and both of B; wants9: all 7;
    // wants0: none.
    assert_eq!(calls, 5 + 7);
    let seen3: Vec<(Conid, i64)> = d.strategies()[0]
        .seen
        .iter()
        .map(|(c, time, _, _)| (*c, (*time - t(0)).num_minutes()))
        .collect();
    // Bars of the same time keep the order given (reversed: B first).
    assert_eq!(seen3, vec![(B, 2), (A, 2), (B, 3), (A, 3), (A, 4)]);
    assert!(d.strategies()[1].seen.is_empty());
    let seen9 = &d.strategies()[2].seen;
    assert_eq!(seen9.len(), 7);
    assert!(seen9.windows(2).all(|w| w[0].1 <= w[1].1), "time order");
    // Each callback warmed up, with the bar's time as `now`.
    assert!(seen9
        .iter()
        .all(|(_, time, warm, ctx_now)| *warm && ctx_now == time));
    // No intent, no timer; the portfolio and the clock as they were.
    assert!(!d.outbox().has_intents());
    assert_eq!(d.next_timer(), None);
    assert_eq!(d.dropped_in_warm_up(), 2 * (5 + 7));
    assert_eq!(d.now(), now);
    assert_eq!(d.portfolio().equity(), equity);
    assert_eq!(d.portfolio().cash(), cash);
    assert_eq!(d.portfolio().equity(), dec!(1000), "still marked at 50");
    // State saved during warm-up is kept (a strategy's own choice).
    assert_eq!(
        d.state_json(2),
        Some(r#"{"bars":7,"last":"14"}"#),
        "last bar of the history is A at 14"
    );
    // Then live: the next bar trades, is not warming up, marks.
    d.on_bar(&bar(A, 5, dec!(60)));
    let live = d.strategies()[0].seen.last().copied().unwrap();
    assert!(!live.2);
    let intents: Vec<_> = d.outbox().drain_intents().collect();
    assert_eq!(intents.len(), 2, "both greedy strategies buy live");
    assert!(matches!(intents[0], (0, Intent::Place(_))));
    assert_eq!(d.next_timer(), Some(t(5) + Duration::seconds(1)));
    assert_eq!(d.portfolio().equity(), dec!(1020));
}

#[test]
fn warm_up_with_nothing_asked_or_nothing_given_does_nothing() {
    let mut d = Dispatcher::new(vec![counter("a", 0)], Portfolio::new(dec!(1)));
    assert_eq!(d.warmup_bars(), 0);
    assert_eq!(d.warm_up(&[bar(A, 0, dec!(1))]), 0);
    assert!(d.strategies()[0].seen.is_empty());
    let mut d = Dispatcher::new(vec![counter("a", 4)], Portfolio::new(dec!(1)));
    assert_eq!(d.warm_up(&[]), 0);
}

#[test]
fn scoped_and_boxed_strategies_forward_name_and_warm_up() {
    let scoped = engine::strategy::Scoped::new(counter("inner", 4), [A]);
    assert_eq!(scoped.name(), "inner");
    assert_eq!(scoped.warmup_bars(), 4);
    let boxed: Box<dyn Strategy> = Box::new(scoped);
    assert_eq!(boxed.name(), "inner");
    assert_eq!(boxed.warmup_bars(), 4);
    // The default name is the type's.
    let plain = Saver(1u8, None);
    assert!(plain.name().contains("Saver"), "{}", plain.name());
    assert_eq!(plain.warmup_bars(), 0);
    // A scoped strategy warms up on its own contracts only.
    let mut d = Dispatcher::new(vec![boxed], Portfolio::new(dec!(1)));
    let calls = d.warm_up(&[bar(A, 0, dec!(1)), bar(B, 0, dec!(1))]);
    // Both bars are offered (the dispatcher does not know the scope); the
    // strategy itself ignores B: only A's bar reaches the counter, which
    // saved a state once.
    assert_eq!(calls, 2);
    assert_eq!(d.state_json(0), Some(r#"{"bars":1,"last":"1"}"#));
}
