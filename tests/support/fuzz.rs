//! Generated inputs for the fuzz tests of every reader of outside input
//! (bar files, history responses, order tickets, config files, websocket
//! and REST bodies).
//!
//! Stable Rust and proptest, no cargo-fuzz: each target runs in
//! `cargo test` for [`cases`] inputs (a few thousand by default, bounded
//! for CI); `FUZZ_CASES=1000000 cargo test --release --test <target>` is
//! the long run the README reports. Inputs are of three kinds, so that
//! the parsers are driven past their first check:
//! * arbitrary bytes;
//! * a valid example with random byte edits (insert, delete, replace);
//! * a valid example with one number replaced by an extreme one (huge,
//!   negative, zero, many decimals, exponent notation, not a number).
//!
//! Included by `#[path]` from the test targets of several crates, so the
//! generators are written once.

#![allow(dead_code, unreachable_pub)]

use proptest::prelude::*;

/// How many inputs each fuzz target runs: `FUZZ_CASES` from the
/// environment, else `PROPTEST_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    ["FUZZ_CASES", "PROPTEST_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(default)
}

/// Numbers a corrupt or hostile input could hold where a price, size or
/// time is expected.
pub const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "-50.25",
    "1e27",
    "1e308",
    "-1e308",
    "1e-30",
    "1e400",
    "-1e400",
    "1e-400",
    "123456789012345678901234567890.123456789",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "-79228162514264337593543950336",
    "340282366920938463463374607431768211456",
    "0.0000000000000000000000000000001",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "NaN",
    "Infinity",
    "\"NaN\"",
    "\"Infinity\"",
    "\"\"",
    "\"1e27\"",
    "\"-5\"",
    "\"1,000,000.5\"",
    "null",
    "true",
    "[]",
    "{}",
];

/// One edit of a byte string.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Insert a byte at a position (taken modulo the length).
    Insert(usize, u8),
    /// Delete the byte at a position.
    Delete(usize),
    /// Replace the byte at a position.
    Replace(usize, u8),
    /// Cut the input at a position.
    Truncate(usize),
}

/// One random [`Edit`].
pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Apply `edits` to `seed`.
pub fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let n = v.len();
        match *e {
            Edit::Insert(i, b) => v.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                v.remove(i % n);
            }
            Edit::Replace(i, b) if n > 0 => v[i % n] = b,
            Edit::Truncate(i) => v.truncate(i % (n + 1)),
            _ => {}
        }
    }
    v
}

/// Replace the `k`-th run of digits (with its sign, fraction and exponent)
/// in `seed` by `number`.
pub fn replace_number(seed: &str, k: usize, number: &str) -> String {
    let b = seed.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let mut start = i;
            if start > 0 && b[start - 1] == b'-' {
                start -= 1;
            }
            while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'e' | b'E')) {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return seed.to_owned();
    }
    let (s, e) = runs[k % runs.len()];
    format!("{}{number}{}", &seed[..s], &seed[e..])
}

/// Inputs derived from `seeds`: arbitrary bytes, edited seeds, and seeds
/// with one or two numbers made extreme.
pub fn inputs(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    seeded(seeds.iter().map(|s| (*s).to_owned()).collect())
}

/// [`inputs`] from seeds read at run time (fixture files), the seeds
/// themselves included.
pub fn seeded(seeds: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let (s1, s2) = (seeds.clone(), seeds.clone());
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..256),
        6 => (prop::sample::select(s1), prop::collection::vec(edit(), 1..6))
            .prop_map(|(seed, edits)| mutate(seed.as_bytes(), &edits)),
        6 => (
            prop::sample::select(s2),
            any::<usize>(),
            prop::sample::select(EXTREME_NUMBERS),
            any::<usize>(),
            prop::sample::select(EXTREME_NUMBERS),
        )
            .prop_map(|(seed, k1, x1, k2, x2)| {
                let once = replace_number(&seed, k1, x1);
                replace_number(&once, k2, x2).into_bytes()
            }),
        1 => prop::sample::select(seeds).prop_map(String::into_bytes),
    ]
}
