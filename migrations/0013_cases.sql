-- Cases: the analysts' unit of work (issue 18). An applied event whose live decision is
-- review or block opens its account's case, or joins the account's open one, in the batch's
-- transaction (dedup/cases.cpp). The dedup gate lets each event through once, so a case
-- counts each event once under redelivery and SIGKILL with no mechanism of its own.
CREATE TABLE fraud_cases (
  case_id          bigserial   PRIMARY KEY,
  account_id       text        NOT NULL,
  state            text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'assigned', 'closed')),
  assignee         text,
  decision         text        NOT NULL CHECK (decision IN ('review', 'block')),  -- the strongest so far
  event_count      integer     NOT NULL,  -- what no constraint forces: a copy applied twice shows here
  opened_at        timestamptz NOT NULL DEFAULT now(),
  last_event_at    timestamptz NOT NULL,  -- the latest occurred_at among its events
  updated_at       timestamptz NOT NULL DEFAULT now(),
  disposition      text        CHECK (disposition IN ('fraud', 'legitimate', 'unsure')),
  closed_by        text,
  closed_at        timestamptz,
  CHECK ((state = 'closed') = (disposition IS NOT NULL AND closed_by IS NOT NULL AND closed_at IS NOT NULL))
);
-- One open case per account: the batch's insert meets this index and joins the open case.
CREATE UNIQUE INDEX fraud_cases_open_per_account ON fraud_cases (account_id) WHERE state <> 'closed';
CREATE INDEX fraud_cases_queue ON fraud_cases (state, last_event_at);

-- A case's events. Their alerts and explanations are fraud_alerts' rows of the same event.
CREATE TABLE fraud_case_events (
  case_id        bigint      NOT NULL REFERENCES fraud_cases,
  event_source   text        NOT NULL,
  event_id       text        NOT NULL,
  transaction_id text        NOT NULL,
  decision       text        NOT NULL,
  score          integer     NOT NULL,
  occurred_at    timestamptz NOT NULL,
  PRIMARY KEY (case_id, event_source, event_id)
);
CREATE INDEX fraud_case_events_transaction ON fraud_case_events (transaction_id);

-- Labels come from more than the simulator now: a closed case's disposition labels its
-- transactions (source 'case'), beside the simulator's ('simulator') and those typed in by
-- hand ('manual', every row before this migration). One label per transaction and source,
-- so a disposition never overwrites the simulator's truth; the backtest prefers a case's.
ALTER TABLE fraud_labels
  ADD COLUMN source      text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'simulator', 'case')),
  ADD COLUMN case_id     bigint REFERENCES fraud_cases,
  ADD COLUMN labelled_by text,
  ADD CHECK ((source = 'case') = (case_id IS NOT NULL AND labelled_by IS NOT NULL));
ALTER TABLE fraud_labels DROP CONSTRAINT fraud_labels_pkey, ADD PRIMARY KEY (transaction_id, source);

-- The one label of a transaction that backtests and reports count: an analyst's disposition
-- first (what the bank decided), then one typed in by hand, then the simulator's.
CREATE VIEW transaction_labels AS
SELECT DISTINCT ON (transaction_id) transaction_id, is_fraud, source, scenario, case_id, labelled_by, labelled_at
FROM fraud_labels
ORDER BY transaction_id, CASE source WHEN 'case' THEN 0 WHEN 'manual' THEN 1 ELSE 2 END;
GRANT SELECT ON transaction_labels TO fraud_service;

-- The batch opens and joins cases; it changes nothing an analyst decides (the grant names
-- the columns the join updates).
GRANT SELECT, INSERT ON fraud_cases, fraud_case_events TO fraud_service;
GRANT UPDATE (decision, event_count, last_event_at, updated_at) ON fraud_cases TO fraud_service;
GRANT USAGE ON SEQUENCE fraud_cases_case_id_seq TO fraud_service;

-- Every change an analyst makes (who, what, before, after, when). Append-only: only the
-- functions below write it, and no role is granted UPDATE or DELETE on it.
CREATE TABLE audit_log (
  audit_id  bigserial   PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text        NOT NULL,
  action    text        NOT NULL,  -- e.g. case.close
  object    text        NOT NULL,  -- e.g. case:42
  before    jsonb,
  after     jsonb
);

-- The console (console/, cases/) runs as a member of fraud_console. It changes nothing
-- directly: every change is one of the functions below, SECURITY DEFINER, which locks the
-- case, checks its state, makes the change, writes the labels a close makes and the audit
-- row, all in one statement. So even a compromised console cannot forge a label, reopen a
-- closed case or change anything without its audit row; it can only name the analyst. The
-- functions bound their lock waits: a batch joining the case waits at most that long.
-- The role is made as 0004 makes the service's.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fraud_console') THEN
    CREATE ROLE fraud_console NOLOGIN;
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the role fraud_console does not exist and this role may not create it'
      USING HINT = 'Have a DBA run: CREATE ROLE fraud_console NOLOGIN; then migrate again.';
  WHEN unique_violation OR duplicate_object THEN
    NULL;  -- a migration of another database created it at the same moment
END $$;

-- SQLSTATEs the console maps: P0002 no such case (404), 55000 closed already (409), 22023 a
-- bad argument (400).

-- Locks a case that is not closed and returns it; called only by the two below, as their
-- owner (no role may call it).
CREATE FUNCTION fraud_case_lock_open(p_case bigint)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  was jsonb;
  current_state text;
BEGIN
  SELECT to_jsonb(c), c.state INTO was, current_state FROM fraud_cases c WHERE case_id = p_case FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'case % does not exist', p_case USING ERRCODE = 'P0002';
  ELSIF current_state = 'closed' THEN
    RAISE EXCEPTION 'case % is closed already', p_case USING ERRCODE = '55000';
  END IF;
  RETURN was;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_case_lock_open(bigint) FROM PUBLIC;

CREATE FUNCTION fraud_case_assign(p_case bigint, p_assignee text, p_actor text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  was jsonb;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_assignee, '') = '' OR length(p_assignee) > 100 THEN
    RAISE EXCEPTION 'an assignee (at most 100 characters) and an actor are required' USING ERRCODE = '22023';
  END IF;
  was := fraud_case_lock_open(p_case);
  UPDATE fraud_cases SET state = 'assigned', assignee = p_assignee, updated_at = now()
  WHERE case_id = p_case RETURNING to_jsonb(fraud_cases) INTO now_is;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'case.assign', 'case:' || p_case, was, now_is);
END $$;

-- Fraud and legitimate label each of the case's transactions that has no case label yet
-- (source 'case', with the case and the analyst); unsure labels nothing. Returns how many
-- it labelled.
CREATE FUNCTION fraud_case_close(p_case bigint, p_disposition text, p_actor text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  was jsonb;
  now_is jsonb;
  labelled integer := 0;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_disposition IS NULL OR p_disposition NOT IN ('fraud', 'legitimate', 'unsure') THEN
    RAISE EXCEPTION 'a disposition (fraud, legitimate or unsure) and an actor are required' USING ERRCODE = '22023';
  END IF;
  was := fraud_case_lock_open(p_case);
  UPDATE fraud_cases SET state = 'closed', disposition = p_disposition, closed_by = p_actor, closed_at = now(),
                         updated_at = now()
  WHERE case_id = p_case RETURNING to_jsonb(fraud_cases) INTO now_is;
  IF p_disposition <> 'unsure' THEN
    INSERT INTO fraud_labels (transaction_id, is_fraud, source, case_id, labelled_by)
    SELECT DISTINCT transaction_id, p_disposition = 'fraud', 'case', p_case, p_actor
    FROM fraud_case_events WHERE case_id = p_case
    ON CONFLICT (transaction_id, source) DO NOTHING;
    GET DIAGNOSTICS labelled = ROW_COUNT;
  END IF;
  INSERT INTO audit_log (actor, action, object, before, after)
  VALUES (p_actor, 'case.close', 'case:' || p_case, was, now_is);
  RETURN labelled;
END $$;

REVOKE EXECUTE ON FUNCTION fraud_case_assign(bigint, text, text), fraud_case_close(bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_case_assign(bigint, text, text), fraud_case_close(bigint, text, text)
  TO fraud_console;
GRANT USAGE ON SCHEMA public TO fraud_console;
-- Reads: the cases, their alerts, the audit, and of the history only what a case shows (not
-- the event bodies, with their devices' addresses and customers' details).
GRANT SELECT ON fraud_cases, fraud_case_events, fraud_alerts, transaction_labels, audit_log TO fraud_console;
GRANT SELECT (event_source, event_id, transaction_id, occurred_at, account_id, amount_minor, currency, merchant_id,
              device_id, decision, score) ON transactions TO fraud_console;

-- The backtest reads labels through transaction_labels only.
REVOKE SELECT ON fraud_labels FROM fraud_service;
