-- First-seen pairs only of the kinds some rule reads (issue 28). Three kinds were recorded for
-- every event whatever the rules, so that a first_seen feature added later knew everything
-- already seen: 1.36 rows and index entries per applied event, of which the starter rules
-- read one kind. Now a replica registers the kinds its rules read, as it registers key fields
-- (0012); every batch on every replica records the maintained kinds; and a kind maintained
-- only from some batch on is backfilled from the history before a rule reads it, so it still
-- knows everything already seen (store/first_seen_pairs.cpp):
--
--   1. with the dedup gate held exclusively for a moment (no batch in flight), mark the kind
--      maintained from the last applied batch W on: every batch after W records it;
--   2. unless the kind was complete up to W already, backfill the history's pairs of the
--      kind applied up to W, 500 first keys per short transaction (batches go on meanwhile,
--      and wait at most for one chunk). Each chunk holds the kind's row and moves
--      backfilled_to on, so replicas registering the kind at once share the work, and one
--      that restarts goes on where the last chunk ended;
--   3. mark it complete: rules may read it.
--
-- A backfilled pair is recorded as the first event that had it in the order the service
-- applied them (migrations/0011), so a backtest reproduces what a batch would have claimed.
-- A pair recorded before W keeps its row (a rule may have read it); one a batch recorded after
-- W, which the history had before, is moved back to its first event (no rule read it yet).
--
-- recorded_through: every pair of the kind in the history is recorded up to this applied
-- batch (a value of applied_batches); NULL when that is not known.
--
-- Locks: a new table of three rows, and a column grant on first_seen_pairs (a catalog
-- change: a moment). No row of the history or of the pairs is read or rewritten.
CREATE TABLE first_seen_pair_kinds (
  pair_kind        text    PRIMARY KEY,   -- as first_seen_pairs.pair_kind: "account_id|device.id"
  maintained       boolean NOT NULL DEFAULT false,
  recorded_from    bigint,                -- maintained: batches after this one record the kind
  complete         boolean NOT NULL DEFAULT false,
  backfilled_to    text,                  -- the last first key a backfill chunk recorded
  recorded_through bigint
);

-- The three kinds every batch recorded until now are complete up to the last applied batch.
-- Other kinds a rule file declared were recorded only while it was in use: not known.
INSERT INTO first_seen_pair_kinds (pair_kind, recorded_through)
SELECT k, coalesce(pg_sequence_last_value('applied_batches'), 0)
FROM unnest(ARRAY['account_id|counterparty.account', 'account_id|device.id', 'account_id|merchant.id']) AS k;

GRANT SELECT, INSERT, UPDATE ON first_seen_pair_kinds TO fraud_service;
-- The backfill moves a pair a batch recorded after the mark back to its first event.
GRANT UPDATE (first_at, first_seq) ON first_seen_pairs TO fraud_service;
