-- The order the service applied events in, so a backtest replays them in it and reproduces
-- the service's decisions exactly (issue: the backtest disagreed with the service). Each
-- batch draws a number from applied_batches after it has taken its keys' version locks
-- (migrations/0009): a batch that shares a key with another waits for that one's commit
-- before it draws, so per key the numbers follow commit order, whichever replica applied
-- the events. An event's applied_seq is its batch's number times 131072 plus its place in
-- the batch (batch.max_records is at most 100,000). A pair's first_seq is the applied_seq of
-- the event that first recorded it. Rows from before this migration have NULLs.
-- CACHE 1 (the default, pinned): a session that cached numbers ahead could draw a lower one
-- after another session's commit, and the order would no longer be commit order.
CREATE SEQUENCE applied_batches CACHE 1;
GRANT USAGE ON SEQUENCE applied_batches TO fraud_service;
ALTER TABLE transactions ADD COLUMN applied_seq bigint;
ALTER TABLE first_seen_pairs ADD COLUMN first_seq bigint;
-- A replica of an older version left running would write history rows without applied_seq,
-- which a backtest replays first: stop every replica before this migration (docs/OPERATIONS.md,
-- Upgrading). A CHECK constraint would refuse them, but every day partition that `dedup prune`
-- attaches would have to carry it too.

-- A key whose version comes back as 1 from a batch's bump was never extended before, so it
-- has no stored history and the batch loads none (rules/features.cpp, synchronise): most
-- cards and devices of a batch are met for the first time, and asking for their history
-- probed every day partition for nothing. That holds only if every key with stored history
-- has a version; rows from before migration 0009 may not, so they get one here.
INSERT INTO feature_key_versions (key_field, key, version)
SELECT f, k, 1 FROM (
            SELECT DISTINCT 'account_id', account_id FROM transactions
  UNION ALL SELECT DISTINCT 'customer_id', customer_id FROM transactions
  UNION ALL SELECT DISTINCT 'card.fingerprint', card_fingerprint FROM transactions
  UNION ALL SELECT DISTINCT 'device.id', device_id FROM transactions
  UNION ALL SELECT DISTINCT 'device.ip', device_ip FROM transactions
  UNION ALL SELECT DISTINCT 'merchant.id', merchant_id FROM transactions
  UNION ALL SELECT DISTINCT 'counterparty.account', counterparty_account FROM transactions
) AS key(f, k)
WHERE k IS NOT NULL AND k <> ''
ON CONFLICT DO NOTHING;
