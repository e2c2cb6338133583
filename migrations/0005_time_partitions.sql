-- Retention. processed_events and the transaction history are partitioned by day of event
-- time, so that old days are dropped whole (`fraud-consumer dedup prune`) rather than deleted
-- row by row, and so that the dedup index a batch writes to is a few days' worth, not all
-- time's.
--
-- PostgreSQL requires the partition key in every unique index, so the keys gain occurred_at.
-- The dedup stays exact: a redelivered event is the same bytes, so it carries the same
-- occurred_at and meets its first delivery in the same partition. Rows whose day has no
-- partition yet land in <table>_default; prune creates the day's partition and moves them.
-- The window in which a duplicate is always caught is retention.days (README, "Retention").

ALTER TABLE processed_events RENAME TO processed_events_unpartitioned;
ALTER INDEX processed_events_pkey RENAME TO processed_events_unpartitioned_pkey;
CREATE TABLE processed_events (
  event_source text        NOT NULL DEFAULT '',
  event_id     text        NOT NULL,
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  "offset"     bigint      NOT NULL,
  occurred_at  timestamptz NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_source, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE processed_events_default PARTITION OF processed_events DEFAULT;
INSERT INTO processed_events SELECT * FROM processed_events_unpartitioned;
DROP TABLE processed_events_unpartitioned;

ALTER TABLE transactions RENAME TO transactions_unpartitioned;
ALTER INDEX transactions_pkey RENAME TO transactions_unpartitioned_pkey;
CREATE TABLE transactions (
  event_source         text        NOT NULL DEFAULT '',
  event_id             text        NOT NULL,
  occurred_at          timestamptz NOT NULL,
  account_id           text        NOT NULL,
  customer_id          text,
  card_fingerprint     text,
  device_id            text,
  device_ip            text,
  merchant_id          text,
  counterparty_account text,
  amount_minor         bigint      NOT NULL,
  currency             text        NOT NULL,
  transaction_id       text        NOT NULL,
  body                 text        NOT NULL,
  PRIMARY KEY (event_source, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);
CREATE TABLE transactions_default PARTITION OF transactions DEFAULT;
INSERT INTO transactions SELECT * FROM transactions_unpartitioned;
DROP TABLE transactions_unpartitioned;  -- and its indexes, made again below on the new table
CREATE INDEX transactions_account ON transactions (account_id, occurred_at);
CREATE INDEX transactions_customer ON transactions (customer_id, occurred_at) WHERE customer_id IS NOT NULL;
CREATE INDEX transactions_card ON transactions (card_fingerprint, occurred_at) WHERE card_fingerprint IS NOT NULL;
CREATE INDEX transactions_device ON transactions (device_id, occurred_at) WHERE device_id IS NOT NULL;
CREATE INDEX transactions_ip ON transactions (device_ip, occurred_at) WHERE device_ip IS NOT NULL;
CREATE INDEX transactions_merchant ON transactions (merchant_id, occurred_at) WHERE merchant_id IS NOT NULL;
CREATE INDEX transactions_counterparty ON transactions (counterparty_account, occurred_at)
  WHERE counterparty_account IS NOT NULL;

-- The grants of 0004, for the new tables. Partitions need none: the service reaches them
-- only through these parents.
GRANT SELECT, INSERT ON processed_events, transactions TO fraud_service;
