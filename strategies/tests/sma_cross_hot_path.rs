#![allow(unsafe_code)] // a counting global allocator: the test of "no allocation per bar"
//! The per-bar cost of `sma_cross`: no heap allocation once a contract is
//! known, and (ignored by default, run with `--release -- --ignored`) the
//! throughput through a real `Dispatcher`.
//!
//! This binary installs a counting global allocator; the count is per thread
//! so the test harness's own threads do not disturb it.
#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

extern crate ibflow_strategies as strategies;

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use common::*;
use engine::dispatch::Dispatcher;
use engine::model::{Bar, Conid};
use engine::portfolio::Portfolio;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use strategies::{SmaCross, SmaCrossParams};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// A deterministic zig-zag: rising for `half` bars, falling for `half`, so
/// the averages cross every `half` bars or so.
fn close(i: u64, half: u64) -> Decimal {
    let phase = i % (2 * half);
    let level = if phase < half {
        phase
    } else {
        2 * half - phase
    };
    Decimal::new(10_000 + 7 * level as i64, 2)
}

fn bars(n: u64, conids: &[Conid], half: u64) -> Vec<Bar> {
    (0..n)
        .map(|i| {
            let conid = conids[(i as usize) % conids.len()];
            bar(conid, i as i64, close(i / conids.len() as u64, half))
        })
        .collect()
}

#[test]
fn no_allocation_per_bar_without_a_signal() {
    let conids = [A, B, Conid(3), Conid(4)];
    let strategy = SmaCross::new(SmaCrossParams::default()).unwrap();
    let mut d = Dispatcher::new(vec![strategy], Portfolio::new(dec!(1000000)));
    // Warm-up: every contract seen once (its state is allocated then).
    let warm = bars(4, &conids, 1_000_000);
    for b in &warm {
        d.on_bar(b);
    }
    // A monotone rise: after the first cross there is none, so the bars
    // below emit at most one order per contract.
    let rising: Vec<Bar> = (0..100_000u64)
        .map(|i| {
            let conid = conids[(i as usize) % conids.len()];
            bar(conid, i as i64 + 10, Decimal::new(10_000 + i as i64, 2))
        })
        .collect();
    // The counter does see allocations on this thread.
    let probe = allocs();
    drop(std::hint::black_box(Vec::<u64>::with_capacity(8)));
    assert!(allocs() > probe);
    let before = allocs();
    for b in &rising {
        d.on_bar(b);
    }
    let during = allocs() - before;
    let emitted = d.outbox().drain_intents().count() as u64;
    // Each emitted market order costs its batch Vec and its cOID String;
    // nothing else may allocate.
    assert!(
        during <= emitted * 2,
        "{during} allocations for {} bars and {emitted} orders",
        rising.len()
    );
    assert!(emitted <= conids.len() as u64);
}

#[test]
#[ignore = "throughput measurement: cargo test --release -p strategies --test sma_cross_hot_path -- --ignored --nocapture"]
fn throughput() {
    let conids = [A, B, Conid(3), Conid(4)];
    let data = bars(2_000_000, &conids, 97);
    let strategy = SmaCross::new(SmaCrossParams::default()).unwrap();
    let mut d = Dispatcher::new(vec![strategy], Portfolio::new(dec!(1000000)));
    let rounds = 5;
    let start = Instant::now();
    let mut orders = 0;
    for _ in 0..rounds {
        for chunk in data.chunks(4096) {
            for b in chunk {
                d.on_bar(b);
            }
            orders += d.outbox().drain_intents().count();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (data.len() * rounds) as f64;
    println!(
        "sma_cross: {:.1} M bars/s ({} bars, {orders} orders, {secs:.3} s)",
        n / secs / 1e6,
        n
    );
}
