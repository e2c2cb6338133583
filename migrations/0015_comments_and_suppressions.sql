-- Case comments and rule suppressions (issue 18), changed only through functions that audit
-- them, as 0013 and 0014 change cases and lists; and list entries and suppressions that
-- count by the lists' version each batch decided under, which every history row records.

-- An analyst's notes on a case: append-only, and allowed after close too (a note changes no
-- disposition, and a chargeback often arrives after the case closed).
CREATE TABLE fraud_case_comments (
  comment_id bigserial   PRIMARY KEY,
  case_id    bigint      NOT NULL REFERENCES fraud_cases,
  author     text        NOT NULL,
  body       text        NOT NULL CHECK (body <> '' AND length(body) <= 4000),
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fraud_case_comments_case ON fraud_case_comments (case_id, comment_id);

-- What each decision was made under. 0014 counted an entry by the time an event occurred,
-- so ending one did not reach an event stamped inside its window that arrived afterwards (a
-- backlog, a late relay, a producer's clock), and a backtest could differ from the batch in
-- the moments around a change. Now an entry counts for a decision made under a version from
-- the one that added it until the one that ended it, and before its natural expiry by the
-- batch's transaction time: every batch records both on its history rows, and a backtest
-- replays exactly what each batch saw (rules/runtime_lists.h). Rows from before this
-- migration have neither and are replayed by event time.
ALTER TABLE transactions ADD COLUMN lists_version bigint, ADD COLUMN lists_at timestamptz;
ALTER TABLE fraud_list_entries
  ADD COLUMN added_version bigint NOT NULL DEFAULT 0,  -- existing entries: before every recorded version
  ADD COLUMN ended_version bigint,
  ADD COLUMN ended_at      timestamptz;
-- 0014 ended an entry by setting expires_at to the moment: that is its end now.
UPDATE fraud_list_entries SET ended_at = expires_at, ended_version = (SELECT version FROM fraud_list_version)
WHERE ended_by IS NOT NULL;
ALTER TABLE fraud_list_entries ALTER COLUMN added_version DROP DEFAULT;

-- A suppression: one rule does not fire for one account's events while it is in force (a
-- known-good customer whose payroll trips large_amount every month). Always with an end: a
-- suppression nobody remembers is a hole. Never deleted: ending one records when, so a
-- backtest replays what each batch saw.
CREATE TABLE fraud_suppressions (
  suppression_id bigserial   PRIMARY KEY,
  rule_id        text        NOT NULL CHECK (rule_id <> '' AND length(rule_id) <= 200),
  account_id     text        NOT NULL CHECK (account_id <> '' AND length(account_id) <= 512),
  reason         text        NOT NULL CHECK (reason <> ''),
  author         text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  added_version  bigint      NOT NULL,
  ended_version  bigint,
  ended_at       timestamptz,
  ended_by       text,
  CHECK (expires_at > created_at)
);
CREATE INDEX fraud_suppressions_account ON fraud_suppressions (account_id, rule_id);

-- A case's page reads its audit rows (cases/case_desk.cpp); the log only grows.
CREATE INDEX audit_log_object ON audit_log (object, audit_id);

-- fraud_list_version counts suppressions' changes too: each batch reloads lists and
-- suppressions together when it moved (dedup/list_entries.cpp).
GRANT SELECT ON fraud_suppressions TO fraud_service;
GRANT SELECT ON fraud_case_comments, fraud_suppressions TO fraud_console;

-- SQLSTATEs as in 0013: P0002 no such case or suppression in force, 22023 a bad argument.
-- These follow 0013's and 0014's functions (check, change, bump, audit) line for line, on
-- purpose: each SECURITY DEFINER function reads whole in one place, and a shared helper
-- would mean editing migrations that have run.
CREATE FUNCTION fraud_case_comment(p_case bigint, p_body text, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  id bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_body, '') = '' OR length(p_body) > 4000 THEN
    RAISE EXCEPTION 'a comment (1 to 4000 characters) and an actor are required' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT FROM fraud_cases WHERE case_id = p_case) THEN
    RAISE EXCEPTION 'case % does not exist', p_case USING ERRCODE = 'P0002';
  END IF;
  INSERT INTO fraud_case_comments (case_id, author, body) VALUES (p_case, p_actor, p_body)
  RETURNING comment_id, to_jsonb(fraud_case_comments) INTO id, now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'case.comment', 'case:' || p_case, NULL, now_is);
  RETURN id;
END $$;

CREATE FUNCTION fraud_suppression_add(p_rule text, p_account text, p_reason text, p_days integer, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  id bigint;
  v bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_rule, '') = '' OR length(p_rule) > 200 OR coalesce(p_account, '') = ''
     OR length(p_account) > 512 OR coalesce(p_reason, '') = '' OR length(p_reason) > 1000
     OR p_days IS NULL OR p_days < 1 OR p_days > 365 THEN
    RAISE EXCEPTION 'a rule, an account, a reason (at most 1000 characters) and days from 1 to 365 are required'
      USING ERRCODE = '22023';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  INSERT INTO fraud_suppressions (rule_id, account_id, reason, author, expires_at, added_version)
  VALUES (p_rule, p_account, p_reason, p_actor, now() + p_days * interval '1 day', v)
  RETURNING suppression_id, to_jsonb(fraud_suppressions) INTO id, now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'suppression.add', 'suppression:' || id, NULL, now_is);
  RETURN id;
END $$;

CREATE FUNCTION fraud_suppression_end(p_suppression bigint, p_actor text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  was jsonb;
  now_is jsonb;
  v bigint;
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  SELECT to_jsonb(s) INTO was FROM fraud_suppressions s
  WHERE suppression_id = p_suppression AND ended_at IS NULL AND expires_at > now() FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no suppression % is in force', p_suppression USING ERRCODE = 'P0002';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  UPDATE fraud_suppressions SET ended_at = now(), ended_version = v, ended_by = p_actor
  WHERE suppression_id = p_suppression RETURNING to_jsonb(fraud_suppressions) INTO now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'suppression.end', 'suppression:' || p_suppression, was, now_is);
END $$;

-- 0014's list functions, now recording the version of each change on the entry.
CREATE OR REPLACE FUNCTION fraud_list_add(p_list text, p_value text, p_reason text, p_days integer, p_actor text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  id bigint;
  v bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_list IS NULL OR p_list !~ '^[a-z][a-z0-9_]{0,62}$'
     OR coalesce(p_value, '') = '' OR length(p_value) > 512 OR coalesce(p_reason, '') = ''
     OR length(p_reason) > 1000 OR (p_days IS NOT NULL AND (p_days < 1 OR p_days > 3650)) THEN
    RAISE EXCEPTION 'a list name (lowercase letters, digits, _), a value (at most 512 characters), a reason (at most 1000) and days from 1 to 3650 or none are required'
      USING ERRCODE = '22023';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  INSERT INTO fraud_list_entries (list_name, value, reason, author, expires_at, added_version)
  VALUES (p_list, p_value, p_reason, p_actor, now() + p_days * interval '1 day', v)
  RETURNING entry_id, to_jsonb(fraud_list_entries) INTO id, now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'list.add', 'list_entry:' || id, NULL, now_is);
  RETURN id;
END $$;

CREATE OR REPLACE FUNCTION fraud_list_end(p_entry bigint, p_actor text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  was jsonb;
  now_is jsonb;
  v bigint;
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  SELECT to_jsonb(e) INTO was FROM fraud_list_entries e
  WHERE entry_id = p_entry AND ended_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no list entry % is in force', p_entry USING ERRCODE = 'P0002';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  UPDATE fraud_list_entries SET ended_at = now(), ended_version = v, ended_by = p_actor
  WHERE entry_id = p_entry RETURNING to_jsonb(fraud_list_entries) INTO now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'list.end', 'list_entry:' || p_entry, was, now_is);
END $$;

REVOKE EXECUTE ON FUNCTION fraud_case_comment(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text), fraud_suppression_end(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_case_comment(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text), fraud_suppression_end(bigint, text) TO fraud_console;
