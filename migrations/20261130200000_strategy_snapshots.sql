-- The state each strategy of a live run saved with `Context::save_state`,
-- kept so a restarted bot hands it back (`Journal::load_strategy_states`).
-- One row per strategy index (its place in the run's list of strategies);
-- `name` is the strategy's `Strategy::name`, checked before the state is
-- handed back, so a reordered list never gives one strategy another's
-- state. Last write wins: a save replaces the row.
--
-- (`strategy_state`, from the first migration, is another thing: free-form
-- values by strategy name and key, written through `Store::set_state`.)
CREATE TABLE strategy_snapshots (
    slot             INTEGER PRIMARY KEY NOT NULL CHECK (slot >= 0),
    name             TEXT NOT NULL,
    -- JSON text, at most 1 MiB (engine::strategy::MAX_STATE_BYTES).
    state_json       TEXT NOT NULL CHECK (length(CAST(state_json AS BLOB)) <= 1048576),
    updated_ms       INTEGER NOT NULL
);
