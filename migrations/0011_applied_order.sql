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

-- A key whose version comes back as 1 from a batch's bump was never extended before, so it
-- has no stored history and the batch loads none (rules/features.cpp, synchronise): most
-- cards and devices of a batch are met for the first time, and asking for their history
-- probed every day partition for nothing. That holds only if every key with stored history
-- has a version; rows from before migration 0009 may not, so they get one here.
INSERT INTO feature_key_versions (key_field, key, version)
SELECT f, k, 1
FROM transactions t
CROSS JOIN LATERAL (VALUES ('account_id', t.account_id), ('customer_id', t.customer_id),
                           ('card.fingerprint', t.card_fingerprint), ('device.id', t.device_id),
                           ('device.ip', t.device_ip), ('merchant.id', t.merchant_id),
                           ('counterparty.account', t.counterparty_account)) AS key(f, k)
WHERE k IS NOT NULL AND k <> ''
ON CONFLICT DO NOTHING;
