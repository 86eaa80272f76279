//! The simulated venue: the bar-driven [`SimExchange`], the venue's
//! ForecastEx netting, and the account's books, as one [`Venue`].
//!
//! The backtest runner and the CP Gateway simulator both trade on this, so
//! what happens after a fill (netting a YES buy against a held NO,
//! booking positions and cash) is written once. An exchange reports fills
//! only; a ForecastEx venue follows a buy of a paired contract with its
//! netting reports (`B`, then `N` on the held side, then `N` on the bought
//! side: [`Pairing::venue_reports`]), computed from the books as they
//! stood before the fill.

use std::future::Future;

use rust_decimal::Decimal;

use engine::event::Event;
use engine::forecastex::Pairing;
use engine::model::{
    Bar, Execution, Order, OrderChanges, OrderId, OrderRequest, Position, Timestamp,
};
use engine::portfolio::Portfolio;
use engine::router::now_or_never;
use engine::venue::{Venue, VenueError, VenueState};

use crate::exchange::SimExchange;

/// A request to the simulated venue that did not complete at once: a bug
/// in the venue, since nothing in it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the simulated venue did not answer at once")]
pub struct Waited;

/// Run a request to the simulated venue (or the router over it) to its
/// end: it completes on its first poll, with no executor.
pub fn at_once<F: Future>(fut: F) -> Result<F::Output, Waited> {
    now_or_never(fut).ok_or(Waited)
}

/// [`SimExchange`] plus netting and books.
#[derive(Debug)]
pub struct SimVenue {
    exchange: SimExchange,
    pairing: Pairing,
    /// Positions and cash as the venue books them. Kept when asked for
    /// (the simulator's account) or when netting needs the positions.
    books: Option<Portfolio>,
}

impl SimVenue {
    /// A venue over `exchange`, netting the `pairing`'s strikes (empty: no
    /// event contracts). Books are kept only when netting needs them; see
    /// [`SimVenue::with_books`].
    pub fn new(exchange: SimExchange, pairing: Pairing) -> Self {
        let books = (!pairing.is_empty()).then(|| Portfolio::new(Decimal::ZERO));
        SimVenue {
            exchange,
            pairing,
            books,
        }
    }

    /// Keep the account's books from `cash` (positions, cash, marks).
    pub fn with_books(mut self, cash: Decimal) -> Self {
        self.books = Some(Portfolio::new(cash));
        self
    }

    /// The matching engine.
    pub fn exchange(&self) -> &SimExchange {
        &self.exchange
    }

    /// The account's books, when kept.
    pub fn books(&self) -> Option<&Portfolio> {
        self.books.as_ref()
    }

    /// The account's books, to mark them.
    pub fn books_mut(&mut self) -> Option<&mut Portfolio> {
        self.books.as_mut()
    }

    /// Net and book the executions appended to `out` since `from`.
    fn settle(&mut self, from: usize, out: &mut Vec<Event>) {
        let Some(books) = &mut self.books else {
            return;
        };
        if self.pairing.is_empty() {
            for ev in &out[from..] {
                if let Event::Execution(e) = ev {
                    books.apply(e);
                }
            }
            return;
        }
        if !out[from..].iter().any(|e| matches!(e, Event::Execution(_))) {
            return;
        }
        let produced: Vec<Event> = out.drain(from..).collect();
        for ev in produced {
            match ev {
                Event::Execution(fill) => {
                    let reports = self.pairing.venue_reports(fill, |c| books.quantity(c));
                    for e in reports {
                        books.apply(&e);
                        out.push(Event::Execution(e));
                    }
                }
                other => out.push(other),
            }
        }
    }
}

/// A venue that fills on bars: what the backtest loop drives. Tests wrap
/// [`SimVenue`] in one to watch what the router asks of it.
pub trait BarVenue: Venue {
    /// Whether any order is working or held; the replay skips the venue
    /// on bars where nothing can fill.
    fn has_orders(&self) -> bool;

    /// Fill what `bar` reaches. Fills (each followed by its netting
    /// reports) and order updates go to `out` in the order they happened.
    fn on_bar(&mut self, bar: &Bar, out: &mut Vec<Event>);
}

impl BarVenue for SimVenue {
    #[inline]
    fn has_orders(&self) -> bool {
        self.exchange.has_orders()
    }

    fn on_bar(&mut self, bar: &Bar, out: &mut Vec<Event>) {
        let from = out.len();
        self.exchange.on_bar(bar, out);
        self.settle(from, out);
    }
}

impl SimVenue {
    // The requests proper, synchronous and out of line: the router's
    // futures stay small, and the backtest's order path fits in fewer
    // cache lines.

    #[inline(never)]
    fn place_now(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        let from = out.len();
        let placed = self.exchange.place(strategy, batch, now, out);
        self.settle(from, out);
        placed
    }

    #[inline(never)]
    fn cancel_now(
        &mut self,
        id: OrderId,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        self.exchange.cancel(id, now, out)
    }

    #[inline(never)]
    fn modify_now(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        self.exchange.modify(id, changes, now, out)
    }
}

impl Venue for SimVenue {
    async fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        self.place_now(strategy, batch, now, out)
    }

    async fn cancel(
        &mut self,
        id: OrderId,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        self.cancel_now(id, now, out)
    }

    async fn modify(
        &mut self,
        id: OrderId,
        changes: OrderChanges,
        now: Timestamp,
        out: &mut Vec<Event>,
    ) -> Result<(), VenueError> {
        self.modify_now(id, changes, now, out)
    }
}

impl VenueState for SimVenue {
    async fn positions(&self) -> Result<Vec<Position>, VenueError> {
        Ok(self
            .books
            .iter()
            .flat_map(|b| b.positions())
            .filter(|p| !p.is_flat())
            .cloned()
            .collect())
    }

    async fn orders(&self) -> Result<Vec<Order>, VenueError> {
        Ok(self.exchange.orders().cloned().collect())
    }

    async fn executions(&self) -> Result<Vec<Execution>, VenueError> {
        Ok(self.exchange.executions().cloned().collect())
    }
}
