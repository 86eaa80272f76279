-- ibflow store, first schema.
--
-- Conventions (see migrations/README.md):
--   * money, prices and quantities are TEXT holding the exact decimal
--     (rust_decimal's Display), never REAL;
--   * instants are INTEGER milliseconds since the Unix epoch, UTC
--     (columns end in _ms), so ranges and ordering are integer compares;
--   * conids are INTEGER; wire enums are TEXT in their CP Web API spelling.

-- Orders we placed or learned of, keyed by the customer order id (cOID) the
-- engine assigns; the broker's id arrives with the acknowledgement.
CREATE TABLE orders (
    client_order_id  TEXT PRIMARY KEY NOT NULL,
    broker_order_id  TEXT UNIQUE,
    engine_order_id  INTEGER,
    parent           TEXT,            -- parent's cOID (bracket children)
    oca_group        TEXT,
    strategy         TEXT,
    account          TEXT,
    conid            INTEGER NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type       TEXT NOT NULL,
    quantity         TEXT NOT NULL,
    limit_price      TEXT,
    stop_price       TEXT,
    trail_amount     TEXT,
    trail_unit       TEXT CHECK (trail_unit IN ('amt', '%')),
    tif              TEXT NOT NULL,
    outside_rth      INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL,
    filled_quantity  TEXT NOT NULL DEFAULT '0',
    avg_fill_price   TEXT,
    reason           TEXT,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL
);
CREATE INDEX orders_status ON orders (status);
CREATE INDEX orders_strategy ON orders (strategy);

-- Every status change of an order, in the order it was recorded.
CREATE TABLE order_status_history (
    id               INTEGER PRIMARY KEY,
    client_order_id  TEXT NOT NULL REFERENCES orders (client_order_id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    filled_quantity  TEXT NOT NULL,
    reason           TEXT,
    time_ms          INTEGER NOT NULL
);
CREATE INDEX order_status_history_order ON order_status_history (client_order_id, id);

-- Executions, stored exactly once whatever source repeats them (websocket
-- str, its replay after a reconnect, /iserver/account/trades). seq keeps the
-- order of arrival; execution_id is the venue's key.
CREATE TABLE executions (
    seq              INTEGER PRIMARY KEY,
    execution_id     TEXT NOT NULL UNIQUE,
    order_ref        TEXT,            -- the cOID the order was placed with
    engine_order_id  INTEGER,
    account          TEXT NOT NULL,
    conid            INTEGER NOT NULL,
    side             TEXT NOT NULL CHECK (side IN ('B', 'S', 'N')),
    size             TEXT NOT NULL,
    price            TEXT NOT NULL,
    commission       TEXT NOT NULL,
    net_amount       TEXT NOT NULL,
    trade_time_ms    INTEGER NOT NULL,
    raw_json         TEXT,
    recorded_ms      INTEGER NOT NULL
);
CREATE INDEX executions_time ON executions (trade_time_ms);
CREATE INDEX executions_order_ref ON executions (order_ref);
CREATE INDEX executions_account_conid ON executions (account, conid);

-- Positions as implied by the stored executions; updated in the same
-- transaction that stores a new execution.
CREATE TABLE positions (
    account          TEXT NOT NULL,
    conid            INTEGER NOT NULL,
    quantity         TEXT NOT NULL,
    avg_cost         TEXT NOT NULL,
    realized_pnl     TEXT NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (account, conid)
) WITHOUT ROWID;

-- ForecastEx YES/NO conids per strike, from /trsrv/event/contracts.
CREATE TABLE event_contracts (
    conid            INTEGER PRIMARY KEY NOT NULL,
    underlying_conid INTEGER NOT NULL,
    expiration       TEXT,
    strike           TEXT NOT NULL,
    strike_label     TEXT,
    put_or_call      TEXT NOT NULL CHECK (put_or_call IN ('C', 'P')),
    payout           TEXT NOT NULL DEFAULT '1'
);

-- Free-form resumable state of a strategy: JSON values by key.
CREATE TABLE strategy_state (
    strategy         TEXT NOT NULL,
    key              TEXT NOT NULL,
    value            TEXT NOT NULL,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (strategy, key)
) WITHOUT ROWID;

-- Backtest runs and their summaries (the summary.json document, plus its
-- scalar metrics one per row so runs can be ranked in SQL).
CREATE TABLE backtest_runs (
    id               INTEGER PRIMARY KEY,
    strategy         TEXT NOT NULL,
    params_json      TEXT NOT NULL,
    data             TEXT NOT NULL,
    created_ms       INTEGER NOT NULL,
    summary_json     TEXT NOT NULL
);
CREATE TABLE backtest_metrics (
    run_id           INTEGER NOT NULL REFERENCES backtest_runs (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    value            TEXT,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Historical bars already fetched, keyed by conid, bar size (the API's bar
-- spelling, e.g. 1min, 1d) and bar time.
CREATE TABLE bar_cache (
    conid            INTEGER NOT NULL,
    bar_size         TEXT NOT NULL,
    time_ms          INTEGER NOT NULL,
    open             TEXT NOT NULL,
    high             TEXT NOT NULL,
    low              TEXT NOT NULL,
    close            TEXT NOT NULL,
    volume           TEXT NOT NULL,
    PRIMARY KEY (conid, bar_size, time_ms)
) WITHOUT ROWID;
