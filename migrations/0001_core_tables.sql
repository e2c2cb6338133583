-- The tables of one idempotent batch. Every batch writes its rows here in one transaction.

-- One row per event applied: the deduplication key. CloudEvents scope ids by source; the
-- other envelopes leave event_source empty.
CREATE TABLE processed_events (
  event_source text        NOT NULL DEFAULT '',
  event_id     text        NOT NULL,
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  "offset"     bigint      NOT NULL,
  occurred_at  timestamptz NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_source, event_id)
);

-- The truth about consumption: the next offset to read per partition, and the epoch that
-- fences zombies. Each assignment bumps the epoch; a batch writes only while its epoch holds.
CREATE TABLE consumer_offsets (
  group_id    text        NOT NULL,
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint,
  epoch       bigint      NOT NULL DEFAULT 0,
  owner       text,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition)
);

-- At most one alert per (event, rule), whatever the replays.
CREATE TABLE fraud_alerts (
  alert_id         bigserial   PRIMARY KEY,
  event_source     text        NOT NULL DEFAULT '',
  event_id         text        NOT NULL,
  transaction_id   text        NOT NULL,
  account_id       text        NOT NULL,
  rule_id          text        NOT NULL,
  rule_set_version text        NOT NULL,
  score            integer     NOT NULL,
  decision         text        NOT NULL,
  reason           text        NOT NULL,
  amount_minor     bigint      NOT NULL,
  currency         text        NOT NULL,
  occurred_at      timestamptz NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (event_source, event_id, rule_id)
);

-- Records that are not valid events, kept whole (the raw bytes are needed for repair).
CREATE TABLE rejected_events (
  rejected_id bigserial   PRIMARY KEY,
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  "offset"    bigint      NOT NULL,
  record_key  bytea,
  headers     jsonb       NOT NULL DEFAULT '[]',  -- [[name, value], …]; a value that is not text is {"hex": …}
  value       bytea,
  reason      text        NOT NULL,
  rejected_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (topic, partition, "offset")
);

-- The service's own outbox: alerts and dead letters leave through it, written in the batch's
-- transaction, published by the outbox relay. Never a second independent write to Kafka.
CREATE TABLE outbox (
  outbox_id    bigserial   PRIMARY KEY,
  topic        text        NOT NULL,
  record_key   bytea,
  headers      jsonb       NOT NULL DEFAULT '[]',   -- [[name, value], …]
  payload      bytea       NOT NULL,
  event_type   text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (outbox_id) WHERE published_at IS NULL;
