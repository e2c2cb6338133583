-- Case comments and rule suppressions (issue 18), changed only through functions that audit
-- them, as 0013 and 0014 change cases and lists.

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

-- A suppression: one rule does not fire for one account's events that occur while it is in
-- force (a known-good customer whose payroll trips large_amount every month). Always with
-- an end: a suppression nobody remembers is a hole. Never deleted: ending one sets
-- expires_at, so a backtest replays what was in force when each event occurred.
CREATE TABLE fraud_suppressions (
  suppression_id bigserial   PRIMARY KEY,
  rule_id        text        NOT NULL CHECK (rule_id <> '' AND length(rule_id) <= 200),
  account_id     text        NOT NULL CHECK (account_id <> '' AND length(account_id) <= 512),
  reason         text        NOT NULL CHECK (reason <> ''),
  author         text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
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
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_rule, '') = '' OR length(p_rule) > 200 OR coalesce(p_account, '') = ''
     OR length(p_account) > 512 OR coalesce(p_reason, '') = '' OR length(p_reason) > 1000
     OR p_days IS NULL OR p_days < 1 OR p_days > 365 THEN
    RAISE EXCEPTION 'a rule, an account, a reason (at most 1000 characters) and days from 1 to 365 are required'
      USING ERRCODE = '22023';
  END IF;
  INSERT INTO fraud_suppressions (rule_id, account_id, reason, author, expires_at)
  VALUES (p_rule, p_account, p_reason, p_actor, now() + p_days * interval '1 day')
  RETURNING suppression_id, to_jsonb(fraud_suppressions) INTO id, now_is;
  UPDATE fraud_list_version SET version = version + 1;
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
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  SELECT to_jsonb(s) INTO was FROM fraud_suppressions s
  WHERE suppression_id = p_suppression AND expires_at > now() FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no suppression % is in force', p_suppression USING ERRCODE = 'P0002';
  END IF;
  UPDATE fraud_suppressions SET expires_at = greatest(now(), created_at + interval '1 microsecond'), ended_by = p_actor
  WHERE suppression_id = p_suppression RETURNING to_jsonb(fraud_suppressions) INTO now_is;
  UPDATE fraud_list_version SET version = version + 1;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'suppression.end', 'suppression:' || p_suppression, was, now_is);
END $$;

REVOKE EXECUTE ON FUNCTION fraud_case_comment(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text), fraud_suppression_end(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_case_comment(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text), fraud_suppression_end(bigint, text) TO fraud_console;
