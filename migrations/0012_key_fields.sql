-- Key fields whose versions batches keep (0009). A version per key field of every event
-- (seven of them) was a third of PostgreSQL's time (bench/run), and only the fields some
-- rule file in use groups by need versions. A replica registers its rules' fields before
-- its first batch under those rules, holding the dedup gate exclusively (dedup_gate.h), so
-- every batch that commits after the registration bumps the field, whichever replica and
-- rule file runs it; and none was in flight while it registered. A field stays registered.
--
-- complete: every key of the field that has stored history has a version row, so a first
-- version (1) means the key has no history and the load is skipped. Versions were complete
-- for every field until this migration (0009 and 0011's backfill); a field registered later
-- is complete only if no batch has drawn from applied_batches since (versions_through).
CREATE TABLE feature_key_fields (
  key_field        text    PRIMARY KEY,          -- as in feature_key_versions.key_field
  maintained       boolean NOT NULL DEFAULT false,
  complete         boolean NOT NULL DEFAULT false,
  versions_through bigint                        -- unmaintained: complete up to this applied batch
);
INSERT INTO feature_key_fields (key_field, versions_through)
SELECT f, coalesce(pg_sequence_last_value('applied_batches'), 0)
FROM unnest(ARRAY['account_id', 'customer_id', 'card.fingerprint', 'device.id', 'device.ip',
                  'merchant.id', 'counterparty.account']) AS f;
GRANT SELECT, INSERT, UPDATE ON feature_key_fields TO fraud_service;
