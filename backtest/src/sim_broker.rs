//! The simulated exchange behind the async [`Venue`] seam, and bar replay
//! behind [`MarketData`], so code written against the seams (execution,
//! the CP Gateway simulator, integration tests) runs on the backtest venue.
//!
//! The replay loop in [`crate::runner`] drives [`SimExchange`] directly: an
//! async call per bar would allocate a boxed future per bar.

use async_trait::async_trait;
use rust_decimal::Decimal;

use engine::event::Event;
use engine::model::{Bar, Execution, Order, OrderId, OrderRequest, Position, Timestamp};
use engine::portfolio::Portfolio;
use engine::venue::{MarketData, MarketDataError, OrderChanges, Venue, VenueError};

use crate::exchange::SimExchange;

/// [`SimExchange`] as a [`Venue`]. Events the exchange produces (order
/// updates, executions) queue up until [`SimBroker::take_events`].
#[derive(Debug)]
pub struct SimBroker {
    exchange: SimExchange,
    now: Timestamp,
    events: Vec<Event>,
    /// Positions as the venue books them: the engine's own accounting.
    portfolio: Portfolio,
}

impl SimBroker {
    pub fn new(exchange: SimExchange) -> Self {
        SimBroker {
            exchange,
            now: Timestamp::UNIX_EPOCH,
            events: Vec::new(),
            portfolio: Portfolio::new(Decimal::ZERO),
        }
    }

    pub fn exchange(&self) -> &SimExchange {
        &self.exchange
    }

    /// Feed a bar: fills what it can and updates positions.
    pub fn on_bar(&mut self, bar: &Bar) {
        self.now = self.now.max(bar.time);
        let start = self.events.len();
        self.exchange.on_bar(bar, &mut self.events);
        for ev in &self.events[start..] {
            if let Event::Execution(e) = ev {
                self.portfolio.apply(e);
            }
        }
    }

    /// Everything that happened since the last call, in order.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

#[async_trait]
impl Venue for SimBroker {
    async fn place(
        &mut self,
        strategy: usize,
        batch: Vec<OrderRequest>,
    ) -> Result<Vec<Order>, VenueError> {
        let start = self.events.len();
        self.exchange
            .place(strategy, batch, self.now, &mut self.events)?;
        Ok(self.events[start..]
            .iter()
            .filter_map(|e| match e {
                Event::OrderUpdate(o) => Some(o.clone()),
                _ => None,
            })
            .collect())
    }

    async fn cancel(&mut self, id: OrderId) -> Result<Order, VenueError> {
        let start = self.events.len();
        self.exchange.cancel(id, self.now, &mut self.events)?;
        last_update(&self.events[start..], id)
    }

    async fn modify(&mut self, id: OrderId, changes: OrderChanges) -> Result<Order, VenueError> {
        let start = self.events.len();
        self.exchange
            .modify(id, changes, self.now, &mut self.events)?;
        last_update(&self.events[start..], id)
    }

    async fn positions(&self) -> Result<Vec<Position>, VenueError> {
        Ok(self
            .portfolio
            .positions()
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

fn last_update(events: &[Event], id: OrderId) -> Result<Order, VenueError> {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::OrderUpdate(o) if o.id() == id => Some(o.clone()),
            _ => None,
        })
        .ok_or(VenueError::UnknownOrder(id))
}

/// Bars from any iterator as a [`MarketData`] source, in batches.
pub struct Replay<I> {
    bars: I,
    batch: usize,
}

impl<I> Replay<I> {
    pub fn new(bars: I, batch: usize) -> Self {
        Replay {
            bars,
            batch: batch.max(1),
        }
    }
}

#[async_trait]
impl<I, E> MarketData for Replay<I>
where
    I: Iterator<Item = Result<Bar, E>> + Send,
    E: std::fmt::Display,
{
    async fn next_batch(&mut self, out: &mut Vec<Event>) -> Result<usize, MarketDataError> {
        let mut n = 0;
        while n < self.batch {
            match self.bars.next() {
                Some(Ok(bar)) => {
                    out.push(Event::Bar(bar));
                    n += 1;
                }
                Some(Err(e)) => return Err(MarketDataError::Source(e.to_string())),
                None => break,
            }
        }
        Ok(n)
    }
}
