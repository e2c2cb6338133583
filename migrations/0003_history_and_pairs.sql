-- Transaction history: every applied event, written in the batch's transaction. Features
-- are computed from it (a replica loads a key's recent history when it first meets the
-- key), and backtests replay it. body is the event as plain JSON (events/encode.h).
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
  PRIMARY KEY (event_source, event_id)
);
CREATE INDEX transactions_account ON transactions (account_id, occurred_at);
CREATE INDEX transactions_customer ON transactions (customer_id, occurred_at) WHERE customer_id IS NOT NULL;
CREATE INDEX transactions_card ON transactions (card_fingerprint, occurred_at) WHERE card_fingerprint IS NOT NULL;
CREATE INDEX transactions_device ON transactions (device_id, occurred_at) WHERE device_id IS NOT NULL;
CREATE INDEX transactions_ip ON transactions (device_ip, occurred_at) WHERE device_ip IS NOT NULL;
CREATE INDEX transactions_merchant ON transactions (merchant_id, occurred_at) WHERE merchant_id IS NOT NULL;
CREATE INDEX transactions_counterparty ON transactions (counterparty_account, occurred_at)
  WHERE counterparty_account IS NOT NULL;
CREATE INDEX transactions_time ON transactions (occurred_at);

-- Pairs seen together, for first_seen features: (account, counterparty), (account,
-- device), (account, merchant) are recorded for every event, whatever the rules, so a
-- first_seen feature added later starts from everything already seen.
CREATE TABLE first_seen_pairs (
  pair_kind text        NOT NULL,
  first_key text        NOT NULL,
  second_key text       NOT NULL,
  first_at  timestamptz NOT NULL,
  PRIMARY KEY (pair_kind, first_key, second_key)
);

-- Labels for backtesting: which transactions were fraud (from investigations, chargebacks,
-- or the bank simulator's injected scenarios).
CREATE TABLE fraud_labels (
  transaction_id text    PRIMARY KEY,
  is_fraud       boolean NOT NULL,
  scenario       text,
  labelled_at    timestamptz NOT NULL DEFAULT now()
);
