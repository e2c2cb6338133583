-- Features exact across replicas. Each replica keeps the histories of the keys it meets in
-- memory, but a card, a device or an IP spans accounts on many partitions, and a copy of an
-- event can be applied on another partition first: other replicas extend the same keys.
-- This table counts, per key that a feature groups by, the batches that extended it. A batch
-- bumps the count of every key its new events have, in one statement, in key order, before
-- it reads any history: the row locks make batches that share a key apply one after the
-- other (in one global order, so they never deadlock), and the count each gets back tells
-- whether its cached history is the one just before it. If not, it reloads that key from
-- transactions, where the other replicas' committed events are. So every event sees the
-- key's events in commit order, whichever replica applied them (dedup/batch_store.cpp).
CREATE TABLE feature_key_versions (
  key_field  text        NOT NULL,   -- rules::KeyField: account_id, card_fingerprint, device_id, …
  key        text        NOT NULL,
  version    bigint      NOT NULL,   -- committed batches that extended this key
  PRIMARY KEY (key_field, key)
);
GRANT SELECT, INSERT, UPDATE ON feature_key_versions TO fraud_service;
