-- Deduplication by the event's identity alone: (event_source, event_id), as the contract
-- says (CloudEvents: source + id; the other envelopes carry one id). Until now the key also
-- held occurred_at, because processed_events was partitioned by day of event time and
-- PostgreSQL puts the partition key in every unique index: a redelivery whose occurred_at
-- differed at all (re-serialised at millisecond precision, another time converter in a CDC
-- pipeline, a corrected republish) was applied a second time.
--
-- Retention stays cheap without a key that holds time: the ids live in two generations,
-- list partitions slot 0 and slot 1. A batch inserts into the current slot, whose unique
-- index serialises two replicas applying one id at the same moment, and treats an id found
-- in the other slot as a duplicate. `dedup prune` rotates once the current generation is
-- retention.days old: it truncates the older slot (no row-by-row DELETE) and makes it
-- current. An id is therefore remembered for at least retention.days after it was applied.
-- A rotation waits for every batch in flight and holds new ones back while it switches:
-- batches take the advisory lock (1718770273, 1) shared in their first statement, the
-- rotation takes it exclusive (dedup/batch_store.cpp, dedup/retention.cpp).

CREATE TABLE dedup_generation (
  only_row     boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
  current_slot smallint    NOT NULL CHECK (current_slot IN (0, 1)),
  started_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dedup_generation (current_slot) VALUES (0);

ALTER TABLE processed_events RENAME TO processed_events_by_day;
CREATE TABLE processed_events (
  event_source text        NOT NULL DEFAULT '',
  event_id     text        NOT NULL,
  slot         smallint    NOT NULL,
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  "offset"     bigint      NOT NULL,
  occurred_at  timestamptz NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  body_digest  bigint,     -- events/encode.h body_digest(); NULL for rows from before this migration
  PRIMARY KEY (event_source, event_id, slot)
) PARTITION BY LIST (slot);
CREATE TABLE processed_events_slot0 PARTITION OF processed_events FOR VALUES IN (0);
CREATE TABLE processed_events_slot1 PARTITION OF processed_events FOR VALUES IN (1);
-- Ids applied twice before this migration keep their first row.
INSERT INTO processed_events (event_source, event_id, slot, topic, partition, "offset", occurred_at, processed_at)
SELECT DISTINCT ON (event_source, event_id) event_source, event_id, 0, topic, partition, "offset", occurred_at,
       processed_at
FROM processed_events_by_day
ORDER BY event_source, event_id, processed_at;
DROP TABLE processed_events_by_day;  -- and its day partitions

-- A copy of an applied id whose content differs from the applied one: not applied (the id
-- decides), but kept for an operator to read, with where each copy arrived.
CREATE TABLE duplicate_conflicts (
  conflict_id     bigserial   PRIMARY KEY,
  event_source    text        NOT NULL,
  event_id        text        NOT NULL,
  topic           text        NOT NULL,   -- where this copy arrived
  partition       integer     NOT NULL,
  "offset"        bigint      NOT NULL,
  body            text        NOT NULL,   -- this copy as plain JSON; the applied one is in transactions
  first_topic     text        NOT NULL,   -- where the applied copy arrived
  first_partition integer     NOT NULL,
  first_offset    bigint      NOT NULL,
  detected_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (topic, partition, "offset")     -- a replayed batch records its conflicts once
);

GRANT SELECT, INSERT ON processed_events, duplicate_conflicts TO fraud_service;
GRANT USAGE ON SEQUENCE duplicate_conflicts_conflict_id_seq TO fraud_service;
GRANT SELECT ON dedup_generation TO fraud_service;
