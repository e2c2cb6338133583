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

-- Every change an analyst makes (who, what, before, after, when). Append-only: the console's
-- role may insert and read it, never update or delete it.
CREATE TABLE audit_log (
  audit_id  bigserial   PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text        NOT NULL,
  action    text        NOT NULL,  -- e.g. case.close
  object    text        NOT NULL,  -- e.g. case:42
  before    jsonb,
  after     jsonb
);

-- The console (cases/; issue 18) runs as a member of fraud_console: it reads what the service
-- decided, changes only what analysts own, and adds to labels and the audit without rewriting
-- either (a case's label is the first disposition that named the transaction). The role is
-- made as 0004 makes the service's.
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
GRANT USAGE ON SCHEMA public TO fraud_console;
GRANT SELECT ON fraud_cases, fraud_case_events, fraud_alerts, transactions, fraud_labels, transaction_labels,
                audit_log TO fraud_console;
GRANT UPDATE (state, assignee, disposition, closed_by, closed_at, updated_at) ON fraud_cases TO fraud_console;
GRANT INSERT ON fraud_labels, audit_log TO fraud_console;
GRANT USAGE ON SEQUENCE audit_log_audit_id_seq TO fraud_console;
