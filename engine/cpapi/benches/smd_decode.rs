//! Websocket market data decoding speed: `smd` deltas merged into Quotes.
//!
//! `cargo bench -p ibflow-cpapi --bench smd_decode`
//! (optional argument: message count, default 2,000,000). Prints messages/s
//! on one core. Target: at least 1,000,000 messages/s.

#![allow(clippy::print_stdout)] // a bench command reports on stdout

extern crate ibflow_cpapi as cpapi;

use std::hint::black_box;
use std::time::Instant;

use cpapi::smd::SmdDecoder;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    // A realistic mix: 50 conids, each delta carrying 2-4 changed fields,
    // a first full message per conid.
    let mut msgs = Vec::new();
    for c in 0..50u32 {
        let conid = 265_598 + c;
        msgs.push(format!(
            r#"{{"server_id":"q{c}","conidEx":"{conid}","conid":{conid},"_updated":1702334859712,"6119":"q{c}","31":"C193.18","84":"193.06","86":"193.14","88":"3","85":"12","87":"1.23M","7762":"1234567","6509":"RpB","topic":"smd+{conid}"}}"#
        ));
    }
    for i in 0..1000u32 {
        let conid = 265_598 + (i % 50);
        let px = 19_300 + (i % 37);
        let msg = match i % 3 {
            0 => format!(
                r#"{{"server_id":"q1","conid":{conid},"_updated":{},"31":"{}.{:02}","7059":"100","topic":"smd+{conid}"}}"#,
                1_702_334_860_000u64 + i as u64,
                px / 100,
                px % 100
            ),
            1 => format!(
                r#"{{"server_id":"q1","conid":{conid},"_updated":{},"84":"{}.{:02}","88":"5","topic":"smd+{conid}"}}"#,
                1_702_334_860_000u64 + i as u64,
                px / 100,
                px % 100
            ),
            _ => format!(
                r#"{{"server_id":"q1","conid":{conid},"_updated":{},"86":"{}.{:02}","85":"7","87":"1.24M","7762":"{}","topic":"smd+{conid}"}}"#,
                1_702_334_860_000u64 + i as u64,
                px / 100 + 1,
                px % 100,
                1_234_567 + i
            ),
        };
        msgs.push(msg);
    }
    let bytes: usize = msgs.iter().map(String::len).sum::<usize>() / msgs.len();
    let mut d = SmdDecoder::new();
    // Warm up: every conid seen once.
    for m in &msgs {
        d.decode(m).expect("bench message decodes");
    }
    let t0 = Instant::now();
    for i in 0..n {
        let s = d
            .decode(&msgs[i % msgs.len()])
            .expect("bench message decodes");
        black_box(&s.quote);
    }
    let dt = t0.elapsed();
    let rate = n as f64 / dt.as_secs_f64();
    println!(
        "smd decode: {n} messages (avg {bytes} bytes) in {:.3} s = {:.0} messages/s ({:.0} ns/message)",
        dt.as_secs_f64(),
        rate,
        dt.as_nanos() as f64 / n as f64
    );
}
