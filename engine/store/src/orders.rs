//! Orders keyed by their cOID, with every status change kept.

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{Row, Sqlite, Transaction};

use super::codec::{dec, from_ms, ms, opt_dec};
use super::{parse_code, Result, Store};
use engine::model::{
    Conid, Order, OrderId, OrderStatus, OrderType, Side, Tif, Timestamp, Trail, TrailUnit,
};

/// An order as stored: the request, what the venue said, and who owns it.
/// Plain fields rather than [`Order`], because a restarted engine must read
/// back orders whose strategy index and engine id belong to an earlier run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredOrder {
    /// `cOID`: the key.
    pub client_order_id: String,
    /// The venue's order id; `None` until acknowledged. An upsert without it
    /// keeps the stored one.
    pub broker_order_id: Option<String>,
    /// The engine's id in the run that placed it; meaningless to a later run.
    pub engine_order_id: Option<OrderId>,
    /// The parent's cOID (bracket children).
    pub parent: Option<String>,
    /// OCA group name: members cancel each other on the first fill.
    pub oca_group: Option<String>,
    /// Name of the owning strategy, when known (the journal does not set it).
    pub strategy: Option<String>,
    /// The account the order was sent to.
    pub account: Option<String>,
    /// The contract.
    pub conid: Conid,
    /// Buy or sell.
    pub side: Side,
    /// The engine's order type.
    pub order_type: OrderType,
    /// Total units, unsigned; `side` gives the direction.
    pub quantity: Decimal,
    /// Limit price, for the types that have one.
    pub limit_price: Option<Decimal>,
    /// Stop (trigger) price, for the types that have one.
    pub stop_price: Option<Decimal>,
    /// Trailing distance of `TRAIL` and `TRAILLMT` orders.
    pub trail: Option<Trail>,
    /// Time in force.
    pub tif: Tif,
    /// May work outside regular trading hours.
    pub outside_rth: bool,
    /// Last status reported.
    pub status: OrderStatus,
    /// Units filled so far.
    pub filled_quantity: Decimal,
    /// Average fill price; `None` before the first fill.
    pub avg_fill_price: Option<Decimal>,
    /// Why the venue refused or cancelled it, when it did.
    pub reason: Option<String>,
    /// When the engine first tracked the order.
    pub created: Timestamp,
    /// When the last status or fill arrived.
    pub updated: Timestamp,
}

impl StoredOrder {
    /// The engine's view of an order, with the strategy's name and the
    /// account it was sent to.
    pub fn from_order(order: &Order, strategy: Option<&str>, account: Option<&str>) -> Self {
        let r = &order.request;
        StoredOrder {
            client_order_id: r.client_order_id.clone(),
            broker_order_id: order.broker_order_id.clone(),
            engine_order_id: Some(r.id),
            parent: r.parent.clone(),
            oca_group: r.oca_group.clone(),
            strategy: strategy.map(str::to_owned),
            account: account.map(str::to_owned),
            conid: r.conid,
            side: r.side,
            order_type: r.order_type,
            quantity: r.quantity,
            limit_price: r.limit_price,
            stop_price: r.stop_price,
            trail: r.trail,
            tif: r.tif,
            outside_rth: r.outside_rth,
            status: order.status,
            filled_quantity: order.filled_quantity,
            avg_fill_price: order.avg_fill_price,
            reason: order.reason.clone(),
            created: order.created,
            updated: order.updated,
        }
    }
}

/// A status report for an order we know by cOID (a `sor` message or a row of
/// `/iserver/account/orders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatusUpdate {
    /// The order's cOID; an update for an unknown cOID writes nothing.
    pub client_order_id: String,
    /// The venue's order id, when the report carries it; `None` keeps the
    /// stored one.
    pub broker_order_id: Option<String>,
    /// The reported status.
    pub status: OrderStatus,
    /// Units filled so far (cumulative).
    pub filled_quantity: Decimal,
    /// Average fill price; `None` keeps the stored one.
    pub avg_fill_price: Option<Decimal>,
    /// Why the order was refused or cancelled; `None` keeps the stored reason.
    pub reason: Option<String>,
    /// When the venue reported it; becomes the order's `updated` time.
    pub time: Timestamp,
}

/// One row of an order's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusChange {
    /// The status at this point.
    pub status: OrderStatus,
    /// Units filled at this point.
    pub filled_quantity: Decimal,
    /// The reason recorded with the change, if any.
    pub reason: Option<String>,
    /// The time the change was recorded with (the order's `updated` time or
    /// the report's time).
    pub time: Timestamp,
}

const T: &str = "orders";

impl Store {
    /// Insert or replace an order by cOID. A new order, or a change of status
    /// or filled quantity, appends to its status history; returns whether it
    /// did.
    pub async fn upsert_order(&self, o: &StoredOrder) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        broker_id_free(&mut tx, &o.client_order_id, o.broker_order_id.as_deref()).await?;
        sqlx::query(
            "INSERT INTO orders (client_order_id, broker_order_id, engine_order_id, parent, \
             oca_group, strategy, account, conid, side, order_type, quantity, limit_price, \
             stop_price, trail_amount, trail_unit, tif, outside_rth, status, filled_quantity, \
             avg_fill_price, reason, created_ms, updated_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT(client_order_id) DO UPDATE SET \
             broker_order_id = COALESCE(excluded.broker_order_id, broker_order_id), \
             engine_order_id = excluded.engine_order_id, parent = excluded.parent, \
             oca_group = excluded.oca_group, strategy = excluded.strategy, \
             account = excluded.account, conid = excluded.conid, side = excluded.side, \
             order_type = excluded.order_type, quantity = excluded.quantity, \
             limit_price = excluded.limit_price, stop_price = excluded.stop_price, \
             trail_amount = excluded.trail_amount, trail_unit = excluded.trail_unit, \
             tif = excluded.tif, outside_rth = excluded.outside_rth, status = excluded.status, \
             filled_quantity = excluded.filled_quantity, avg_fill_price = excluded.avg_fill_price, \
             reason = excluded.reason, updated_ms = excluded.updated_ms",
        )
        .bind(&o.client_order_id)
        .bind(&o.broker_order_id)
        .bind(o.engine_order_id.map(|i| i.0 as i64))
        .bind(&o.parent)
        .bind(&o.oca_group)
        .bind(&o.strategy)
        .bind(&o.account)
        .bind(o.conid.0)
        .bind(o.side.code())
        .bind(o.order_type.code())
        .bind(o.quantity.to_string())
        .bind(o.limit_price.map(|d| d.to_string()))
        .bind(o.stop_price.map(|d| d.to_string()))
        .bind(o.trail.map(|t| t.amount.to_string()))
        .bind(o.trail.map(|t| t.unit.as_wire()))
        .bind(o.tif.code())
        .bind(o.outside_rth)
        .bind(o.status.code())
        .bind(o.filled_quantity.to_string())
        .bind(o.avg_fill_price.map(|d| d.to_string()))
        .bind(&o.reason)
        .bind(ms(o.created))
        .bind(ms(o.updated))
        .execute(&mut *tx)
        .await?;
        let changed = append_history(
            &mut tx,
            &o.client_order_id,
            o.status,
            o.filled_quantity,
            o.reason.as_deref(),
            o.updated,
        )
        .await?;
        tx.commit().await?;
        Ok(changed)
    }

    /// Apply a status report to a known order. Returns `false` (and writes
    /// nothing) when no order has that cOID: reconciliation decides what an
    /// unknown order means.
    pub async fn update_order_status(&self, u: &OrderStatusUpdate) -> Result<bool> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let known: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM orders WHERE client_order_id = ?")
                .bind(&u.client_order_id)
                .fetch_optional(&mut *tx)
                .await?;
        if known.is_none() {
            return Ok(false);
        }
        broker_id_free(&mut tx, &u.client_order_id, u.broker_order_id.as_deref()).await?;
        let done = sqlx::query(
            "UPDATE orders SET status = ?, filled_quantity = ?, \
             avg_fill_price = COALESCE(?, avg_fill_price), reason = COALESCE(?, reason), \
             broker_order_id = COALESCE(?, broker_order_id), updated_ms = ? \
             WHERE client_order_id = ?",
        )
        .bind(u.status.code())
        .bind(u.filled_quantity.to_string())
        .bind(u.avg_fill_price.map(|d| d.to_string()))
        .bind(&u.reason)
        .bind(&u.broker_order_id)
        .bind(ms(u.time))
        .bind(&u.client_order_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_history(
            &mut tx,
            &u.client_order_id,
            u.status,
            u.filled_quantity,
            u.reason.as_deref(),
            u.time,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every stored order, oldest first.
    pub async fn orders(&self) -> Result<Vec<StoredOrder>> {
        self.orders_where("1 = 1").await
    }

    /// Orders not yet filled, cancelled or inactive: what a restarted engine
    /// must reconcile with the broker.
    pub async fn open_orders(&self) -> Result<Vec<StoredOrder>> {
        self.orders_where("status NOT IN ('Filled', 'Cancelled', 'Inactive')")
            .await
    }

    /// The order with this cOID, if stored.
    pub async fn order(&self, client_order_id: &str) -> Result<Option<StoredOrder>> {
        let row = sqlx::query(&format!("{SELECT_ORDER} WHERE client_order_id = ?"))
            .bind(client_order_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_from_row(&r)).transpose()
    }

    /// The status history of one order, oldest first.
    pub async fn order_history(&self, client_order_id: &str) -> Result<Vec<StatusChange>> {
        let rows = sqlx::query(
            "SELECT status, filled_quantity, reason, time_ms FROM order_status_history \
             WHERE client_order_id = ? ORDER BY id",
        )
        .bind(client_order_id)
        .fetch_all(&self.pool)
        .await?;
        const H: &str = "order_status_history";
        rows.into_iter()
            .map(|r| {
                Ok(StatusChange {
                    status: parse_code(H, "status", r.try_get("status")?, OrderStatus::from_code)?,
                    filled_quantity: dec(H, "filled_quantity", r.try_get("filled_quantity")?)?,
                    reason: r.try_get("reason")?,
                    time: from_ms(H, "time_ms", r.try_get("time_ms")?)?,
                })
            })
            .collect()
    }

    async fn orders_where(&self, cond: &str) -> Result<Vec<StoredOrder>> {
        let rows = sqlx::query(&format!(
            "{SELECT_ORDER} WHERE {cond} ORDER BY created_ms, client_order_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }
}

const SELECT_ORDER: &str = "SELECT client_order_id, broker_order_id, engine_order_id, parent, \
     oca_group, strategy, account, conid, side, order_type, quantity, limit_price, stop_price, \
     trail_amount, trail_unit, tif, outside_rth, status, filled_quantity, avg_fill_price, reason, \
     created_ms, updated_ms FROM orders";

/// A broker order id names one order: writing it for another cOID is
/// [`super::StoreError::BrokerIdTaken`], reported rather than left to the
/// UNIQUE constraint's bare "constraint failed".
async fn broker_id_free(
    tx: &mut Transaction<'_, Sqlite>,
    coid: &str,
    broker_id: Option<&str>,
) -> Result<()> {
    let Some(b) = broker_id else {
        return Ok(());
    };
    let held: Option<String> = sqlx::query_scalar(
        "SELECT client_order_id FROM orders WHERE broker_order_id = ? AND client_order_id <> ?",
    )
    .bind(b)
    .bind(coid)
    .fetch_optional(&mut **tx)
    .await?;
    match held {
        Some(held_by) => Err(super::StoreError::BrokerIdTaken {
            client_order_id: coid.to_owned(),
            broker_order_id: b.to_owned(),
            held_by,
        }),
        None => Ok(()),
    }
}

/// Append a history row unless the last one already says the same.
async fn append_history(
    tx: &mut Transaction<'_, Sqlite>,
    coid: &str,
    status: OrderStatus,
    filled: Decimal,
    reason: Option<&str>,
    time: Timestamp,
) -> Result<bool> {
    let last = sqlx::query(
        "SELECT status, filled_quantity FROM order_status_history \
         WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(coid)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(r) = last {
        let s: String = r.try_get("status")?;
        let f: String = r.try_get("filled_quantity")?;
        let same_fill = f.parse::<Decimal>().is_ok_and(|f| f == filled);
        if s == status.code() && same_fill {
            return Ok(false);
        }
    }
    sqlx::query(
        "INSERT INTO order_status_history (client_order_id, status, filled_quantity, reason, time_ms) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(coid)
    .bind(status.code())
    .bind(filled.to_string())
    .bind(reason)
    .bind(ms(time))
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

fn order_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredOrder> {
    let engine_order_id: Option<i64> = r.try_get("engine_order_id")?;
    let trail_amount = opt_dec(T, "trail_amount", r.try_get("trail_amount")?)?;
    let trail_unit: Option<String> = r.try_get("trail_unit")?;
    let trail = match (
        trail_amount,
        trail_unit.as_deref().map(TrailUnit::from_wire),
    ) {
        (Some(amount), Some(Some(unit))) => Some(Trail { amount, unit }),
        (None, None) => None,
        _ => {
            return Err(super::StoreError::Corrupt {
                table: T,
                column: "trail_unit",
                value: format!("{trail_unit:?}"),
            })
        }
    };
    Ok(StoredOrder {
        client_order_id: r.try_get("client_order_id")?,
        broker_order_id: r.try_get("broker_order_id")?,
        engine_order_id: engine_order_id.map(|v| OrderId(v as u64)),
        parent: r.try_get("parent")?,
        oca_group: r.try_get("oca_group")?,
        strategy: r.try_get("strategy")?,
        account: r.try_get("account")?,
        conid: Conid(r.try_get("conid")?),
        side: parse_code(T, "side", r.try_get("side")?, Side::from_code)?,
        order_type: parse_code(
            T,
            "order_type",
            r.try_get("order_type")?,
            OrderType::from_code,
        )?,
        quantity: dec(T, "quantity", r.try_get("quantity")?)?,
        limit_price: opt_dec(T, "limit_price", r.try_get("limit_price")?)?,
        stop_price: opt_dec(T, "stop_price", r.try_get("stop_price")?)?,
        trail,
        tif: parse_code(T, "tif", r.try_get("tif")?, Tif::from_code)?,
        outside_rth: r.try_get("outside_rth")?,
        status: parse_code(T, "status", r.try_get("status")?, OrderStatus::from_code)?,
        filled_quantity: dec(T, "filled_quantity", r.try_get("filled_quantity")?)?,
        avg_fill_price: opt_dec(T, "avg_fill_price", r.try_get("avg_fill_price")?)?,
        reason: r.try_get("reason")?,
        created: from_ms(T, "created_ms", r.try_get("created_ms")?)?,
        updated: from_ms(T, "updated_ms", r.try_get("updated_ms")?)?,
    })
}
