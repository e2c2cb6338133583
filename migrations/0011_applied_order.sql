-- The order the service applied events in, so a backtest replays them in it and reproduces
-- the service's decisions exactly (issue: the backtest disagreed with the service). Each
-- batch draws a number from applied_batches after it has taken its keys' version locks
-- (migrations/0009): a batch that shares a key with another waits for that one's commit
-- before it draws, so per key the numbers follow commit order, whichever replica applied
-- the events. An event's applied_seq is its batch's number times 131072 plus its place in
-- the batch (batch.max_records is at most 100,000). A pair's first_seq is the applied_seq of
-- the event that first recorded it. Rows from before this migration have NULLs.
CREATE SEQUENCE applied_batches;
GRANT USAGE ON SEQUENCE applied_batches TO fraud_service;
ALTER TABLE transactions ADD COLUMN applied_seq bigint;
ALTER TABLE first_seen_pairs ADD COLUMN first_seq bigint;
