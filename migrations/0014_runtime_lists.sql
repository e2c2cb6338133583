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

-- The console changes lists only through these, as it changes cases (0013): each change
-- bumps the version and writes its audit row in the same statement. SQLSTATEs: P0002 no
-- such entry in force (404), 22023 a bad argument (400).
CREATE FUNCTION fraud_list_add(p_list text, p_value text, p_reason text, p_days integer, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  id bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_list IS NULL OR p_list !~ '^[a-z][a-z0-9_]{0,62}$'
     OR coalesce(p_value, '') = '' OR length(p_value) > 512 OR coalesce(p_reason, '') = ''
     OR length(p_reason) > 1000 OR (p_days IS NOT NULL AND (p_days < 1 OR p_days > 3650)) THEN
    RAISE EXCEPTION 'a list name (lowercase letters, digits, _), a value (at most 512 characters), a reason (at most 1000) and days from 1 to 3650 or none are required'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO fraud_list_entries (list_name, value, reason, author, expires_at)
  VALUES (p_list, p_value, p_reason, p_actor, now() + p_days * interval '1 day')
  RETURNING entry_id, to_jsonb(fraud_list_entries) INTO id, now_is;
  UPDATE fraud_list_version SET version = version + 1;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'list.add', 'list_entry:' || id, NULL, now_is);
  RETURN id;
END $$;

CREATE FUNCTION fraud_list_end(p_entry bigint, p_actor text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  was jsonb;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  SELECT to_jsonb(e) INTO was FROM fraud_list_entries e
  WHERE entry_id = p_entry AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no list entry % is in force', p_entry USING ERRCODE = 'P0002';
  END IF;
  -- Never at or before created_at (the CHECK), even ended at once or after a clock step back.
  UPDATE fraud_list_entries SET expires_at = greatest(now(), created_at + interval '1 microsecond'), ended_by = p_actor
  WHERE entry_id = p_entry RETURNING to_jsonb(fraud_list_entries) INTO now_is;
  UPDATE fraud_list_version SET version = version + 1;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'list.end', 'list_entry:' || p_entry, was, now_is);
END $$;

REVOKE EXECUTE ON FUNCTION fraud_list_add(text, text, text, integer, text), fraud_list_end(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_list_add(text, text, text, integer, text), fraud_list_end(bigint, text)
  TO fraud_console;
GRANT SELECT ON fraud_list_entries TO fraud_console;

-- A SECURITY DEFINER function must not find a caller's temporary table before its own
-- (PostgreSQL searches pg_temp first unless the path names it last). 0008's function did not
-- say so; every one of these does.
ALTER FUNCTION fraud_release_stalled_owner(text, text, integer, interval)
  SET search_path = pg_catalog, public, pg_temp;
