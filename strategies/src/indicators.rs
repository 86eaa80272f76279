//! Incremental indicators on [`Decimal`].
//!
//! Every indicator keeps whatever history it needs in a fixed-size buffer
//! allocated once, in its constructor, and does O(1) work per update
//! (amortized for [`Highest`]/[`Lowest`]) with no heap allocation. That is
//! what lets a strategy built on them run at benchmark speed: the per-bar
//! cost is a handful of Decimal additions.
//!
//! An indicator has no value until its window is full: `value()` returns
//! `None` before that, so a strategy cannot act on a half-built average by
//! accident.
//!
//! Arithmetic is exact Decimal addition and subtraction on the update path,
//! so running sums never drift: removing a value subtracts exactly what was
//! added. Every operation is checked: prices come from files and the
//! network, and an indicator fed values beyond `Decimal`'s range (~7.9e28,
//! or squares of ~2.8e14 for [`Bollinger`]) has no value (`None`) instead of
//! panicking. The bar loaders bound prices at `engine::limits::MAX_PRICE`
//! (1e12), where every indicator here still has a value.

// Prices, quantities and cash here come from files, flags and the network:
// every operator on them is checked (issue 12). Where one cannot overflow,
// an `allow` with its reason says why.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use std::cmp::Ordering;

use rust_decimal::{Decimal, MathematicalOps};

/// Longest window an indicator accepts: four years of one-minute bars
/// of a 24-hour market. A window allocates its length up front, so a
/// period from a flag or a file is bounded before anything is allocated.
pub const MAX_PERIOD: usize = 2_000_000;

/// A window length outside `1..=MAX_PERIOD` was asked for: no indicator is
/// defined over no values, and a longer window is a typo, not a strategy
/// (it would allocate gigabytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPeriod(pub usize);

impl fmt::Display for BadPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "indicator period must be 1 to {MAX_PERIOD}, got {}",
            self.0
        )
    }
}

impl std::error::Error for BadPeriod {}

/// `period`, when it is in `1..=MAX_PERIOD`.
fn check_period(period: usize) -> Result<usize, BadPeriod> {
    if period == 0 || period > MAX_PERIOD {
        return Err(BadPeriod(period));
    }
    Ok(period)
}

/// A fixed-capacity ring of the last `period` values.
///
/// `push` returns the value that fell out of the window once it is full, which
/// is exactly what a running sum needs to subtract.
#[derive(Debug, Clone)]
struct Ring {
    buf: Box<[Decimal]>,
    /// Where the next value goes; once full, also the oldest value.
    next: usize,
    len: usize,
}

#[allow(
    clippy::arithmetic_side_effects,
    reason = "indices and lengths bounded by the capacity (at most MAX_PERIOD)"
)]
impl Ring {
    fn new(period: usize) -> Result<Self, BadPeriod> {
        let period = check_period(period)?;
        Ok(Ring {
            buf: vec![Decimal::ZERO; period].into_boxed_slice(),
            next: 0,
            len: 0,
        })
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// Store `x`; returns the evicted value when the ring was already full.
    #[inline]
    fn push(&mut self, x: Decimal) -> Option<Decimal> {
        // `next` is always < capacity: the index cannot be out of bounds.
        let old = std::mem::replace(&mut self.buf[self.next], x);
        self.next += 1;
        if self.next == self.buf.len() {
            self.next = 0;
        }
        if self.len == self.buf.len() {
            Some(old)
        } else {
            self.len += 1;
            None
        }
    }
}

/// Simple moving average over the last `period` values, kept as a running
/// sum.
///
/// The sum is exposed so a caller comparing two averages can cross-multiply
/// instead of dividing (see `sma_cross`); [`Sma::value`] divides only when
/// asked.
#[derive(Debug, Clone)]
pub struct Sma {
    ring: Ring,
    sum: ExactSum,
}

/// An exact running sum of decimals, kept as an `i128` mantissa at the
/// finest scale seen so far.
///
/// `rust_decimal` addition re-aligns scales and normalizes on every call,
/// which dominated the per-bar cost of a moving average. Prices of one
/// contract share a scale, so here an update is one integer add and the
/// result is still exact: nothing is rounded, ever. A sum that no longer fits
/// (beyond about 1.7e38 units of the finest scale, far outside any price
/// series) marks itself overflowed instead of wrapping or panicking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExactSum {
    mantissa: i128,
    scale: u32,
    overflowed: bool,
}

const POW10: [i128; 29] = {
    let mut t = [1i128; 29];
    let mut i = 1;
    while i < 29 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

#[allow(
    clippy::arithmetic_side_effects,
    reason = "scales are at most 28 and ordered before subtracting; mantissas use checked operations, and the rounding step moves a quotient of i128 / 10 by one"
)]
impl ExactSum {
    /// Bring `x` to the common scale, raising the sum's scale if `x` is finer.
    #[inline]
    fn aligned(&mut self, x: Decimal) -> Option<i128> {
        let (m, xs) = (x.mantissa(), x.scale());
        if xs == self.scale {
            return Some(m);
        }
        if xs > self.scale {
            let f = POW10[(xs - self.scale) as usize];
            self.mantissa = self.mantissa.checked_mul(f)?;
            self.scale = xs;
            Some(m)
        } else {
            m.checked_mul(POW10[(self.scale - xs) as usize])
        }
    }

    /// Add `x` exactly. A sum that would overflow becomes overflowed for good
    /// (every later [`value`](Self::value) is `None`).
    #[inline]
    pub fn add(&mut self, x: Decimal) {
        if self.overflowed {
            return;
        }
        match self.aligned(x).and_then(|m| self.mantissa.checked_add(m)) {
            Some(v) => self.mantissa = v,
            None => self.overflowed = true,
        }
    }

    /// Subtract `x` exactly (a value that was added, leaving the window); same
    /// overflow rule as [`add`](Self::add).
    #[inline]
    pub fn sub(&mut self, x: Decimal) {
        if self.overflowed {
            return;
        }
        match self.aligned(x).and_then(|m| self.mantissa.checked_sub(m)) {
            Some(v) => self.mantissa = v,
            None => self.overflowed = true,
        }
    }

    /// Mark the sum overflowed for good: a term could not be computed.
    #[inline]
    pub fn poison(&mut self) {
        self.overflowed = true;
    }

    /// The sum as a Decimal, when it fits one (and has not overflowed).
    pub fn value(&self) -> Option<Decimal> {
        if self.overflowed {
            return None;
        }
        Decimal::try_from_i128_with_scale(self.mantissa, self.scale).ok()
    }

    /// The sum as a Decimal, rounded to fewer decimal places when its
    /// exact value has more digits than a Decimal holds (a sum of squares
    /// of large prices); `None` only when even its integer part does not
    /// fit, or it overflowed.
    pub fn value_rounded(&self) -> Option<Decimal> {
        if self.overflowed {
            return None;
        }
        let (mut m, mut scale) = (self.mantissa, self.scale);
        loop {
            if let Ok(d) = Decimal::try_from_i128_with_scale(m, scale) {
                return Some(d);
            }
            if scale == 0 {
                return None;
            }
            // Half away from zero, as Decimal's own arithmetic rounds.
            let (q, r) = (m / 10, m % 10);
            m = if r >= 5 {
                q + 1
            } else if r <= -5 {
                q - 1
            } else {
                q
            };
            scale -= 1;
        }
    }

    /// Exact comparison of `self * a` with `other * b`, for comparing means
    /// without dividing. `None` on overflow.
    #[inline]
    pub fn cmp_scaled(&self, a: i128, other: &ExactSum, b: i128) -> Option<Ordering> {
        if self.overflowed || other.overflowed {
            return None;
        }
        let (mut x, mut y) = (
            self.mantissa.checked_mul(a)?,
            other.mantissa.checked_mul(b)?,
        );
        match self.scale.cmp(&other.scale) {
            Ordering::Less => x = x.checked_mul(POW10[(other.scale - self.scale) as usize])?,
            Ordering::Greater => y = y.checked_mul(POW10[(self.scale - other.scale) as usize])?,
            Ordering::Equal => {}
        }
        Some(x.cmp(&y))
    }
}

impl Sma {
    /// An empty window of `period` values; `BadPeriod` when `period` is 0 or above
    /// [`MAX_PERIOD`].
    pub fn new(period: usize) -> Result<Self, BadPeriod> {
        Ok(Sma {
            ring: Ring::new(period)?,
            sum: ExactSum::default(),
        })
    }

    /// Add a value, dropping the oldest once the window is full.
    #[inline]
    pub fn update(&mut self, x: Decimal) {
        self.sum.add(x);
        if let Some(old) = self.ring.push(x) {
            self.sum.sub(old);
        }
    }

    /// The window length the average is taken over.
    pub fn period(&self) -> usize {
        self.ring.capacity()
    }

    /// How many values the window holds (at most `period`).
    pub fn len(&self) -> usize {
        self.ring.len
    }

    /// True before the first update.
    pub fn is_empty(&self) -> bool {
        self.ring.len == 0
    }

    /// True once `period` values were seen: from then on [`value`](Self::value)
    /// is defined.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    /// Sum of the values in the window (also before it is full); `None`
    /// only if it overflowed (see [`ExactSum`]).
    #[inline]
    pub fn sum(&self) -> Option<Decimal> {
        self.sum.value()
    }

    /// The mean of the last `period` values, once there are that many.
    pub fn value(&self) -> Option<Decimal> {
        if !self.is_full() {
            return None;
        }
        self.sum()?.checked_div(Decimal::from(self.ring.capacity()))
    }

    /// Compare this window's mean with `other`'s, exactly and without
    /// division (sum_a * len_b against sum_b * len_a). `None` until both
    /// windows are full, or on overflow.
    #[inline]
    pub fn cmp_mean(&self, other: &Sma) -> Option<Ordering> {
        if !self.is_full() || !other.is_full() {
            return None;
        }
        let (a, b) = (self.ring.capacity() as i128, other.ring.capacity() as i128);
        self.sum.cmp_scaled(b, &other.sum, a)
    }
}

/// Relative Strength Index with Wilder's smoothing.
///
/// The first average gain and loss are the plain means of the first `period`
/// close-to-close changes; after that each is smoothed as
/// `avg = (avg * (period - 1) + current) / period`. The value is
/// `100 * avg_gain / (avg_gain + avg_loss)`, which equals the textbook
/// `100 - 100 / (1 + RS)` without dividing by a zero average loss; when both
/// averages are zero (a flat market) it is 50.
///
/// Wilder's smoothing needs no window, only the previous close and the two
/// averages, so there is no ring buffer here. It divides on every update once
/// seeded; it is not meant for the hottest loop.
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    period_dec: Decimal,
    prev: Option<Decimal>,
    /// Changes seen so far, up to `period` (seeding phase).
    seen: usize,
    /// Sums during seeding, averages afterwards.
    gain: Decimal,
    loss: Decimal,
    /// An update overflowed `Decimal` (prices no market has): the RSI has
    /// no value from then on.
    overflowed: bool,
}

impl Rsi {
    /// An unseeded RSI over `period` changes; `BadPeriod` when `period` is 0 or above
    /// [`MAX_PERIOD`].
    pub fn new(period: usize) -> Result<Self, BadPeriod> {
        let period = check_period(period)?;
        Ok(Rsi {
            period,
            period_dec: Decimal::from(period),
            prev: None,
            seen: 0,
            gain: Decimal::ZERO,
            loss: Decimal::ZERO,
            overflowed: false,
        })
    }

    /// The smoothing length, in close-to-close changes.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feed the next close; returns the RSI once `period` changes (so
    /// `period + 1` closes) have been seen.
    pub fn update(&mut self, close: Decimal) -> Option<Decimal> {
        let prev = self.prev.replace(close)?;
        if self.overflowed || self.step(close, prev).is_none() {
            self.overflowed = true;
            return None;
        }
        self.value()
    }

    /// One change, checked: `None` on overflow.
    fn step(&mut self, close: Decimal, prev: Decimal) -> Option<()> {
        let change = close.checked_sub(prev)?;
        let (up, down) = if change.is_sign_positive() {
            (change, Decimal::ZERO)
        } else {
            // Negation is exact: Decimal's range is symmetric.
            (Decimal::ZERO, change.abs())
        };
        if self.seen < self.period {
            self.gain = self.gain.checked_add(up)?;
            self.loss = self.loss.checked_add(down)?;
            #[allow(
                clippy::arithmetic_side_effects,
                reason = "seen < period <= MAX_PERIOD"
            )]
            {
                self.seen += 1;
            }
            if self.seen == self.period {
                self.gain = self.gain.checked_div(self.period_dec)?;
                self.loss = self.loss.checked_div(self.period_dec)?;
            }
        } else {
            #[allow(
                clippy::arithmetic_side_effects,
                reason = "period_dec is 1 to MAX_PERIOD"
            )]
            let keep = self.period_dec - Decimal::ONE;
            let smooth = |avg: Decimal, x: Decimal| {
                avg.checked_mul(keep)?
                    .checked_add(x)?
                    .checked_div(self.period_dec)
            };
            self.gain = smooth(self.gain, up)?;
            self.loss = smooth(self.loss, down)?;
        }
        Some(())
    }

    /// True once the first `period` changes seeded the averages.
    pub fn is_ready(&self) -> bool {
        self.seen == self.period
    }

    /// The RSI, 0 to 100 (50 in a flat market), once seeded.
    pub fn value(&self) -> Option<Decimal> {
        if !self.is_ready() || self.overflowed {
            return None;
        }
        let total = self.gain.checked_add(self.loss)?;
        if total.is_zero() {
            return Some(Decimal::from(50));
        }
        Decimal::ONE_HUNDRED
            .checked_mul(self.gain)?
            .checked_div(total)
    }
}

/// Bollinger bands: the mean of the last `period` values plus and minus `k`
/// population standard deviations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bands {
    /// `middle - k * std_dev`.
    pub lower: Decimal,
    /// Mean of the window.
    pub middle: Decimal,
    /// `middle + k * std_dev`.
    pub upper: Decimal,
}

/// Mean and population standard deviation over a window, kept as running sums
/// of the values and of their squares.
///
/// Updates are two exact additions and subtractions. The standard deviation
/// is computed only when asked, as `sqrt(n * sum_sq - sum^2) / n`: the radicand
/// is exact Decimal arithmetic (so no cancellation error), leaving one square
/// root and one division. Squares of prices with up to 14 decimal places are
/// exact in Decimal; a radicand that rounding could still push below zero is
/// clamped to zero. Every step is checked: values whose squares or sums
/// leave `Decimal`'s range give no bands rather than a panic.
#[derive(Debug, Clone)]
pub struct Bollinger {
    ring: Ring,
    k: Decimal,
    n: Decimal,
    sum: ExactSum,
    sum_sq: ExactSum,
}

impl Bollinger {
    /// An empty window of `period` values with bands `k` standard deviations
    /// wide; `BadPeriod` when `period` is 0 or above
    /// [`MAX_PERIOD`]. `k` is not checked (callers
    /// validate it).
    pub fn new(period: usize, k: Decimal) -> Result<Self, BadPeriod> {
        Ok(Bollinger {
            ring: Ring::new(period)?,
            k,
            n: Decimal::from(period),
            sum: ExactSum::default(),
            sum_sq: ExactSum::default(),
        })
    }

    /// Add a value, dropping the oldest once the window is full.
    #[inline]
    pub fn update(&mut self, x: Decimal) {
        self.sum.add(x);
        match x.checked_mul(x) {
            Some(sq) => self.sum_sq.add(sq),
            None => self.sum_sq.poison(),
        }
        if let Some(old) = self.ring.push(x) {
            self.sum.sub(old);
            // `old` was added, so its square was computed once already.
            match old.checked_mul(old) {
                Some(sq) => self.sum_sq.sub(sq),
                None => self.sum_sq.poison(),
            }
        }
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.ring.capacity()
    }

    /// The band width in standard deviations.
    pub fn k(&self) -> Decimal {
        self.k
    }

    /// True once `period` values were seen: from then on the bands are defined.
    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    /// Mean of the window (the middle band), once full.
    pub fn mean(&self) -> Option<Decimal> {
        if !self.is_full() {
            return None;
        }
        self.sum.value()?.checked_div(self.n)
    }

    /// Population standard deviation of the window, once full.
    pub fn std_dev(&self) -> Option<Decimal> {
        if !self.is_full() {
            return None;
        }
        let sum = self.sum.value()?;
        let radicand = self
            .n
            .checked_mul(self.sum_sq.value_rounded()?)?
            .checked_sub(sum.checked_mul(sum)?)?;
        if radicand <= Decimal::ZERO {
            return Some(Decimal::ZERO);
        }
        radicand.sqrt()?.checked_div(self.n)
    }

    /// Lower, middle and upper band, once full; `None` also when they are
    /// beyond `Decimal`'s range.
    pub fn bands(&self) -> Option<Bands> {
        let middle = self.mean()?;
        let width = self.k.checked_mul(self.std_dev()?)?;
        Some(Bands {
            lower: middle.checked_sub(width)?,
            middle,
            upper: middle.checked_add(width)?,
        })
    }
}

/// Sliding-window extreme over the last `period` values: a monotonic deque
/// stored in a fixed-capacity ring.
///
/// Entries are `(sequence number, value)`; the front is the current extreme.
/// A new value first expires the front if it left the window, then drops
/// every entry at the back it dominates, so the deque never holds more than
/// `period` entries and each value is pushed and popped at most once:
/// amortized O(1) per update, no allocation. (A plain O(N) scan of a ring
/// would do for the small N strategies use; the deque costs no more code and
/// stays cheap for long lookbacks.)
#[derive(Debug, Clone)]
struct MonoWindow {
    buf: Box<[(u64, Decimal)]>,
    head: usize,
    len: usize,
    seq: u64,
    period: u64,
    /// True: keep the maximum; false: the minimum.
    max: bool,
}

#[allow(
    clippy::arithmetic_side_effects,
    reason = "indices, lengths and a u64 sequence bounded by the capacity and the bar count; no price arithmetic"
)]
impl MonoWindow {
    fn new(period: usize, max: bool) -> Result<Self, BadPeriod> {
        let period = check_period(period)?;
        Ok(MonoWindow {
            buf: vec![(0, Decimal::ZERO); period].into_boxed_slice(),
            head: 0,
            len: 0,
            seq: 0,
            period: period as u64,
            max,
        })
    }

    #[inline]
    fn at(&self, k: usize) -> usize {
        let i = self.head + k;
        if i >= self.buf.len() {
            i - self.buf.len()
        } else {
            i
        }
    }

    fn update(&mut self, x: Decimal) {
        self.seq += 1;
        // Expire the front if it is now `period` or more values old.
        if self.len > 0 && self.buf[self.head].0 + self.period <= self.seq {
            self.head = self.at(1);
            self.len -= 1;
        }
        // Drop what `x` dominates: it is newer and at least as extreme.
        while self.len > 0 {
            let back = self.buf[self.at(self.len - 1)].1;
            let dominated = if self.max { back <= x } else { back >= x };
            if !dominated {
                break;
            }
            self.len -= 1;
        }
        // After the expiry the deque holds indices seq-period+1 ..= seq-1 at
        // most, so there is room for one more.
        let tail = self.at(self.len);
        self.buf[tail] = (self.seq, x);
        self.len += 1;
    }

    fn is_full(&self) -> bool {
        self.seq >= self.period
    }

    fn value(&self) -> Option<Decimal> {
        (self.is_full() && self.len > 0).then(|| self.buf[self.head].1)
    }
}

/// Highest value over the last `period` updates (e.g. the N-bar high).
#[derive(Debug, Clone)]
pub struct Highest(MonoWindow);

impl Highest {
    /// An empty window of `period` values; `BadPeriod` when `period` is 0 or above
    /// [`MAX_PERIOD`].
    pub fn new(period: usize) -> Result<Self, BadPeriod> {
        MonoWindow::new(period, true).map(Highest)
    }

    /// Add a value; the one `period` updates old leaves the window.
    #[inline]
    pub fn update(&mut self, x: Decimal) {
        self.0.update(x)
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.0.buf.len()
    }

    /// True once `period` values were seen.
    pub fn is_full(&self) -> bool {
        self.0.is_full()
    }

    /// The maximum of the last `period` values, once that many were seen.
    pub fn value(&self) -> Option<Decimal> {
        self.0.value()
    }
}

/// Lowest value over the last `period` updates (e.g. the N-bar low).
#[derive(Debug, Clone)]
pub struct Lowest(MonoWindow);

impl Lowest {
    /// An empty window of `period` values; `BadPeriod` when `period` is 0 or above
    /// [`MAX_PERIOD`].
    pub fn new(period: usize) -> Result<Self, BadPeriod> {
        MonoWindow::new(period, false).map(Lowest)
    }

    /// Add a value; the one `period` updates old leaves the window.
    #[inline]
    pub fn update(&mut self, x: Decimal) {
        self.0.update(x)
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.0.buf.len()
    }

    /// True once `period` values were seen.
    pub fn is_full(&self) -> bool {
        self.0.is_full()
    }

    /// The minimum of the last `period` values, once that many were seen.
    pub fn value(&self) -> Option<Decimal> {
        self.0.value()
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests work out expected values by hand"
)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn periods_outside_the_bounds_are_refused_before_allocating() {
        for p in [0, MAX_PERIOD + 1, 100_000_000_000, usize::MAX] {
            assert_eq!(Sma::new(p).unwrap_err(), BadPeriod(p));
            assert_eq!(Rsi::new(p).unwrap_err(), BadPeriod(p));
            assert_eq!(Bollinger::new(p, dec!(2)).unwrap_err(), BadPeriod(p));
            assert_eq!(Highest::new(p).unwrap_err(), BadPeriod(p));
            assert_eq!(Lowest::new(p).unwrap_err(), BadPeriod(p));
        }
        assert!(Sma::new(MAX_PERIOD).is_ok());
        assert_eq!(
            BadPeriod(0).to_string(),
            "indicator period must be 1 to 2000000, got 0"
        );
    }

    #[test]
    fn sma_by_hand() {
        let mut s = Sma::new(3).unwrap();
        s.update(dec!(1));
        s.update(dec!(2));
        assert_eq!(s.value(), None);
        assert_eq!(s.sum(), Some(dec!(3)));
        s.update(dec!(6));
        assert_eq!(s.value(), Some(dec!(3))); // (1+2+6)/3
        s.update(dec!(10));
        assert_eq!(s.sum(), Some(dec!(18))); // 2+6+10
        assert_eq!(s.value(), Some(dec!(6)));
        s.update(dec!(0.5));
        assert_eq!(s.value(), Some(dec!(5.5))); // (6+10+0.5)/3
        assert_eq!(s.len(), 3);
        assert_eq!(s.period(), 3);
    }

    #[test]
    fn sma_period_one_is_the_last_value() {
        let mut s = Sma::new(1).unwrap();
        for x in [dec!(4), dec!(7.25), dec!(-1)] {
            s.update(x);
            assert_eq!(s.value(), Some(x));
        }
    }

    #[test]
    fn rsi_by_hand() {
        // Period 2. Changes: +1, +1 -> seed gain 1, loss 0 -> RSI 100.
        let mut r = Rsi::new(2).unwrap();
        assert_eq!(r.update(dec!(1)), None);
        assert_eq!(r.update(dec!(2)), None);
        assert_eq!(r.update(dec!(3)), Some(dec!(100)));
        // -1: gain (1*1+0)/2 = 0.5, loss (0*1+1)/2 = 0.5 -> 50.
        assert_eq!(r.update(dec!(2)), Some(dec!(50)));
        // +2: gain (0.5+2)/2 = 1.25, loss 0.5/2 = 0.25 -> 100*1.25/1.5.
        let v = r.update(dec!(4)).unwrap();
        assert_eq!(v.round_dp(6), dec!(83.333333));
        // -4: gain 0.625, loss (0.25+4)/2 = 2.125 -> 100*0.625/2.75.
        let v = r.update(dec!(0)).unwrap();
        assert_eq!(v.round_dp(6), dec!(22.727273));
    }

    #[test]
    fn rsi_of_a_flat_market_is_50() {
        let mut r = Rsi::new(3).unwrap();
        for _ in 0..5 {
            r.update(dec!(10));
        }
        assert_eq!(r.value(), Some(dec!(50)));
    }

    #[test]
    fn bollinger_by_hand() {
        // 2,4,4,4,5,5,7,9: mean 5, population std 2.
        let mut b = Bollinger::new(8, dec!(2)).unwrap();
        for x in [2, 4, 4, 4, 5, 5, 7, 9] {
            assert_eq!(b.bands(), None);
            b.update(Decimal::from(x));
        }
        assert_eq!(b.mean(), Some(dec!(5)));
        assert_eq!(b.std_dev(), Some(dec!(2)));
        assert_eq!(
            b.bands(),
            Some(Bands {
                lower: dec!(1),
                middle: dec!(5),
                upper: dec!(9),
            })
        );
        // Slide: drop 2, add 5 -> 4,4,4,5,5,7,9,5: sum 43, sum_sq 253,
        // 8*253 - 43^2 = 175, std = sqrt(175)/8 = 13.2287565.../8.
        b.update(dec!(5));
        assert_eq!(b.mean(), Some(dec!(5.375)));
        assert_eq!(b.std_dev().unwrap().round_dp(9), dec!(1.653594569));
    }

    #[test]
    fn bollinger_of_constant_values_has_zero_width() {
        let mut b = Bollinger::new(3, dec!(2)).unwrap();
        for _ in 0..4 {
            b.update(dec!(101.37));
        }
        let bands = b.bands().unwrap();
        assert_eq!(bands.lower, dec!(101.37));
        assert_eq!(bands.upper, dec!(101.37));
    }

    #[test]
    fn highest_and_lowest_by_hand() {
        let mut h = Highest::new(3).unwrap();
        let mut l = Lowest::new(3).unwrap();
        let xs = [
            dec!(5),
            dec!(3),
            dec!(4),
            dec!(1),
            dec!(2),
            dec!(2),
            dec!(6),
        ];
        let hi = [None, None, Some(5), Some(4), Some(4), Some(2), Some(6)];
        let lo = [None, None, Some(3), Some(1), Some(1), Some(1), Some(2)];
        for (i, x) in xs.iter().enumerate() {
            h.update(*x);
            l.update(*x);
            assert_eq!(h.value(), hi[i].map(Decimal::from), "high at {i}");
            assert_eq!(l.value(), lo[i].map(Decimal::from), "low at {i}");
        }
    }

    fn price() -> impl Strategy<Value = Decimal> {
        (-1_000_000_000i64..1_000_000_000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s))
    }

    /// Any decimal at all, from the smallest to `Decimal::MAX`, either
    /// sign, any scale: what a corrupt file or message could hold.
    fn any_decimal() -> impl Strategy<Value = Decimal> {
        (any::<i64>(), 0u32..=28, any::<u32>(), any::<bool>()).prop_map(|(lo, scale, hi, neg)| {
            let mut d = Decimal::from_parts(lo as u32, (lo >> 32) as u32, hi, neg, 0);
            d.set_scale(scale).ok();
            d
        })
    }

    proptest! {
        /// No indicator panics on any input: values beyond range give no
        /// value instead.
        #[test]
        fn indicators_never_panic(period in 1usize..6, xs in prop::collection::vec(any_decimal(), 0..40)) {
            let mut sma = Sma::new(period).unwrap();
            let mut rsi = Rsi::new(period).unwrap();
            let mut bb = Bollinger::new(period.max(2), dec!(2)).unwrap();
            let mut hi = Highest::new(period).unwrap();
            let mut lo = Lowest::new(period).unwrap();
            for x in xs {
                sma.update(x);
                let _ = sma.value();
                let _ = rsi.update(x);
                bb.update(x);
                let _ = bb.bands();
                hi.update(x);
                lo.update(x);
            }
        }
    }

    /// At the loaders' price bound every indicator still has a value.
    #[test]
    fn indicators_have_values_at_the_price_bound() {
        let top = engine::limits::MAX_PRICE;
        let mut bb = Bollinger::new(20, dec!(2)).unwrap();
        let mut rsi = Rsi::new(14).unwrap();
        for i in 0..40 {
            let x = top - Decimal::from(i % 7) * dec!(1000.0001);
            bb.update(x);
            rsi.update(x);
        }
        let b = bb.bands().expect("bands at 1e12");
        assert!(b.lower < b.middle && b.middle < b.upper, "{b:?}");
        assert!(rsi.value().is_some());
    }

    proptest! {
        #[test]
        fn sma_equals_naive_mean(period in 1usize..12, xs in prop::collection::vec(price(), 0..60)) {
            let mut s = Sma::new(period).unwrap();
            for (i, x) in xs.iter().enumerate() {
                s.update(*x);
                let start = (i + 1).saturating_sub(period);
                let window = &xs[start..=i];
                let naive_sum: Decimal = window.iter().copied().sum();
                prop_assert_eq!(s.sum(), Some(naive_sum));
                if window.len() == period {
                    let naive = naive_sum / Decimal::from(period);
                    prop_assert_eq!(s.value(), Some(naive));
                } else {
                    prop_assert_eq!(s.value(), None);
                }
            }
        }

        #[test]
        fn extremes_equal_naive_scan(period in 1usize..10, xs in prop::collection::vec(price(), 0..60)) {
            let mut h = Highest::new(period).unwrap();
            let mut l = Lowest::new(period).unwrap();
            for (i, x) in xs.iter().enumerate() {
                h.update(*x);
                l.update(*x);
                if i + 1 >= period {
                    let w = &xs[i + 1 - period..=i];
                    prop_assert_eq!(h.value(), w.iter().copied().max());
                    prop_assert_eq!(l.value(), w.iter().copied().min());
                } else {
                    prop_assert_eq!(h.value(), None);
                    prop_assert_eq!(l.value(), None);
                }
            }
        }

        #[test]
        fn bollinger_matches_two_pass(period in 1usize..10, xs in prop::collection::vec(price(), 1..40)) {
            let mut b = Bollinger::new(period, Decimal::TWO).unwrap();
            for (i, x) in xs.iter().enumerate() {
                b.update(*x);
                if i + 1 >= period {
                    let w = &xs[i + 1 - period..=i];
                    let n = Decimal::from(period);
                    let mean = w.iter().copied().sum::<Decimal>() / n;
                    prop_assert_eq!(b.mean(), Some(mean));
                    let var = w.iter().map(|v| (*v - mean) * (*v - mean)).sum::<Decimal>() / n;
                    let naive = var.sqrt().unwrap();
                    let got = b.std_dev().unwrap();
                    // Two different roundings of the same quantity.
                    let tol = (naive.abs() * dec!(0.000000000001)).max(dec!(0.0000000001));
                    prop_assert!((got - naive).abs() <= tol, "{got} vs {naive}");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::arithmetic_side_effects,
    reason = "tests work out expected values by hand"
)]
mod exact_sum_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Mixed scales: the exact sum equals Decimal's own (exact) sum.
        #[test]
        fn matches_decimal_sum(xs in prop::collection::vec((-10_000_000i64..10_000_000, 0u32..6), 0..50)) {
            let mut s = ExactSum::default();
            let mut d = Decimal::ZERO;
            for (m, sc) in &xs {
                let x = Decimal::new(*m, *sc);
                s.add(x);
                d += x;
            }
            prop_assert_eq!(s.value(), Some(d));
            for (m, sc) in &xs {
                s.sub(Decimal::new(*m, *sc));
            }
            prop_assert_eq!(s.value().map(|v| v.is_zero()), Some(true));
        }
    }

    #[test]
    fn overflow_is_reported_not_wrapped() {
        let mut s = ExactSum::default();
        s.add(Decimal::MAX);
        // Scale 28 forces a rescale of ~7.9e28 by 10^28: beyond i128.
        s.add(Decimal::new(1, 28));
        assert_eq!(s.value(), None);
        let mut a = Sma::new(2).unwrap();
        let mut b = Sma::new(3).unwrap();
        for _ in 0..3 {
            a.update(Decimal::MAX);
            b.update(Decimal::new(1, 28));
        }
        assert_eq!(a.cmp_mean(&b), None);
    }

    #[test]
    fn cmp_mean_is_exact_across_scales() {
        let mut fast = Sma::new(2).unwrap();
        let mut slow = Sma::new(3).unwrap();
        for x in ["1.5", "2.50", "3"] {
            let v: Decimal = x.parse().unwrap();
            fast.update(v);
            slow.update(v);
        }
        // fast mean (2.5+3)/2 = 2.75 > slow mean 7/3 = 2.333...
        assert_eq!(fast.cmp_mean(&slow), Some(Ordering::Greater));
        assert_eq!(slow.cmp_mean(&fast), Some(Ordering::Less));
        assert_eq!(fast.cmp_mean(&fast), Some(Ordering::Equal));
    }
}
