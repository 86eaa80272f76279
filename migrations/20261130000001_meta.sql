-- Facts about the store itself, by key. `bot_id`: the identity of the bot
-- writing this store, the first part of every cOID it sends (8 hex digits
-- drawn from SQLite's randomness on first use), so a restarted bot knows
-- its earlier runs' orders and two bots with their own stores never share
-- one.
CREATE TABLE meta (
    key              TEXT PRIMARY KEY NOT NULL,
    value            TEXT NOT NULL
) WITHOUT ROWID;
