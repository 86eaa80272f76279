-- Ingestion speed: every index on executions is paid on every insert. The
-- (account, conid) index served no query (positions are kept per account
-- and conid in their own table), so it goes.
DROP INDEX IF EXISTS executions_account_conid;
