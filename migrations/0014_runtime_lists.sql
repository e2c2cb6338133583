-- Runtime lists (issue 18): deny and allow lists of cards, devices, IPs, accounts and payees
-- that analysts change in the console, without a rule reload and without losing feature
-- state. A rule file names them under runtime_lists: and tests a value with `in` as it does
-- a static list (docs/CASES.md). An entry is never deleted: removing one ends it
-- (expires_at), so a backtest replays what was in force when each event occurred.
CREATE TABLE fraud_list_entries (
  entry_id   bigserial   PRIMARY KEY,
  list_name  text        NOT NULL CHECK (list_name ~ '^[a-z][a-z0-9_]{0,62}$'),
  value      text        NOT NULL CHECK (value <> '' AND length(value) <= 512),
  reason     text        NOT NULL CHECK (reason <> ''),
  author     text        NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),  -- in force for events that occurred from here
  expires_at timestamptz,                          -- until here; NULL: until ended
  ended_by   text,
  CHECK (expires_at IS NULL OR expires_at > created_at)
);
CREATE INDEX fraud_list_entries_value ON fraud_list_entries (list_name, value);

-- One counter, bumped in the transaction of every change: each batch reads it in its own
-- transaction and reloads the entries when it moved, so a change is in force on every
-- replica from its next batch.
CREATE TABLE fraud_list_version (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  version  bigint  NOT NULL
);
INSERT INTO fraud_list_version VALUES (true, 0);

GRANT SELECT ON fraud_list_entries, fraud_list_version TO fraud_service;
GRANT SELECT, INSERT ON fraud_list_entries TO fraud_console;
GRANT UPDATE (expires_at, ended_by) ON fraud_list_entries TO fraud_console;
GRANT USAGE ON SEQUENCE fraud_list_entries_entry_id_seq TO fraud_console;
GRANT SELECT, UPDATE ON fraud_list_version TO fraud_console;
