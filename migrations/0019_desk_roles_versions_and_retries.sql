-- The analysts' desk, hardened where a bank's security review found it weak (issue 29):
--
-- 1. Lead-only changes are checked by the database, not only by the console process. A new
--    group role, fraud_console_lead, holds everything fraud_console does; the console
--    connects for a lead's request as a login in it, and for an analyst's as a login in
--    fraud_console only. What lowers the bank's decisions (adding to an allow_ list,
--    suppressing a rule, ending an entry of any other list), assigning a case to someone
--    else, and taking or closing a case another analyst has, are refused (42501) unless the
--    session's login is in fraud_console_lead. Whoever holds the analysts' database URL can
--    no longer call fraud_suppression_add(…, 'lena').
--    Ending an entry of a deny list was anyone's before: it lets the card through.
-- 2. A case has a version, bumped by a trigger on every change (a batch joining an event,
--    an assignment, the close), and a close names the version it was shown: a case that
--    gained an event since is refused (55000), so no analyst labels an event never seen. A
--    closed case no longer changes at all, whoever asks; and an event joins a case only in
--    the transaction that moved the case's version, so not even the service's credentials
--    can slip an event into a case without moving it.
-- 3. Every change may carry an idempotency key, kept unique with its audit row, with the
--    request (the login and analyst included) and its result: the same request again returns
--    the first result and changes nothing (a lost reply and a retry no longer leave a twin in
--    force); the key again with another request is refused (FR422).
-- 4. Each audit row names the database login that made the change (session_user) beside
--    the analyst the console named.
--
-- The seven functions are rewritten here with three helpers they share, each owned by the
-- migrating role and callable by no one else. Their signatures change (a key, and a close's
-- version), so the old ones are dropped: a console older than this migration fails its
-- changes (not its reads) until it is upgraded too.
--
-- Locks: ADD COLUMN on fraud_cases and audit_log takes each table's exclusive lock for a
-- moment (no rewrite: a constant default); a batch joining a case would queue behind it, so
-- give up after five seconds and let the operator run `migrate` again. The unique index on
-- audit_log reads the whole log under a SHARE lock, which only the console's changes wait for.
SET LOCAL lock_timeout = '5s';

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fraud_console_lead') THEN
    CREATE ROLE fraud_console_lead NOLOGIN;
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the role fraud_console_lead does not exist and this role may not create it'
      USING HINT = 'Have a DBA run: CREATE ROLE fraud_console_lead NOLOGIN; then migrate again.';
  WHEN unique_violation OR duplicate_object THEN
    NULL;  -- a migration of another database created it at the same moment
END $$;
GRANT fraud_console TO fraud_console_lead;

ALTER TABLE fraud_cases ADD COLUMN version integer NOT NULL DEFAULT 1;
ALTER TABLE audit_log
  ADD COLUMN login           text,   -- the database login that made the change
  ADD COLUMN idempotency_key text,
  ADD COLUMN request         jsonb,  -- what the key was first used for
  ADD COLUMN result          jsonb;  -- and what that returned
CREATE UNIQUE INDEX audit_log_idempotency_key ON audit_log (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Every change to a case moves its version; nothing changes a closed case, nor lowers a
-- block case's decision.
CREATE FUNCTION fraud_case_versioned()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF OLD.state = 'closed' THEN
    RAISE EXCEPTION 'case % is closed: it no longer changes', OLD.case_id USING ERRCODE = '55000';
  ELSIF OLD.decision = 'block' AND NEW.decision <> 'block' THEN
    -- The batch only ever raises a case's decision; lowering one would make a legitimate
    -- close of it one analyst's word (0022).
    RAISE EXCEPTION 'case % is a block case: its decision is not lowered', OLD.case_id USING ERRCODE = '55000';
  END IF;
  NEW.version := OLD.version + 1;
  RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_case_versioned() FROM PUBLIC;
CREATE TRIGGER fraud_cases_versioned BEFORE UPDATE ON fraud_cases FOR EACH ROW EXECUTE FUNCTION fraud_case_versioned();
ALTER TABLE fraud_cases ENABLE ALWAYS TRIGGER fraud_cases_versioned;

-- An event joins a case only in the transaction that changed the case's row (the batch's
-- upsert moves its version in the same statement), and never a closed one. The batch uses
-- no subtransactions, so "changed in this transaction" is the row's xmin being this
-- transaction's id. One check per statement.
CREATE FUNCTION fraud_case_events_join()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF EXISTS (SELECT FROM joined j JOIN fraud_cases c USING (case_id)
             WHERE c.state = 'closed' OR c.xmin <> pg_current_xact_id()::xid) THEN
    RAISE EXCEPTION 'an event joins a case only with a change to the case in the same transaction, and never a closed case'
      USING ERRCODE = '55000';
  END IF;
  RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_case_events_join() FROM PUBLIC;
CREATE TRIGGER fraud_case_events_join AFTER INSERT ON fraud_case_events REFERENCING NEW TABLE AS joined
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_case_events_join();
ALTER TABLE fraud_case_events ENABLE ALWAYS TRIGGER fraud_case_events_join;

-- Refuses (42501) unless this session's login is a lead's: `what` says what was refused.
CREATE FUNCTION fraud_desk_require_lead(p_what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF NOT pg_has_role(session_user, 'fraud_console_lead', 'MEMBER') THEN
    RAISE EXCEPTION 'only a lead may %', p_what USING ERRCODE = '42501';
  END IF;
END $$;

-- What an earlier call under `p_key` returned (JSON null for a function that returns
-- nothing), or SQL NULL when the key is new or none was given. Holds the key's lock to the
-- end of the transaction, so that a retry racing its first attempt waits and then finds it
-- (each statement of a READ COMMITTED transaction sees what committed before it started;
-- the desk runs its transactions so). The request compared includes the login.
CREATE FUNCTION fraud_desk_replay(p_key text, p_action text, p_request jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  earlier audit_log%ROWTYPE;
BEGIN
  IF p_key IS NULL THEN
    RETURN NULL;
  ELSIF p_key !~ '^[!-~]{1,200}$' THEN
    RAISE EXCEPTION 'an idempotency key is 1 to 200 visible ASCII characters' USING ERRCODE = '22023';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('fraud idempotency key ' || p_key, 0));
  SELECT * INTO earlier FROM audit_log WHERE idempotency_key = p_key;
  IF NOT FOUND THEN
    RETURN NULL;
  ELSIF earlier.action <> p_action OR earlier.request IS DISTINCT FROM p_request
        OR earlier.login IS DISTINCT FROM session_user THEN
    RAISE EXCEPTION 'the Idempotency-Key % was used for another request', p_key USING ERRCODE = 'FR422';
  END IF;
  RETURN coalesce(earlier.result, 'null'::jsonb);
END $$;

-- The audit row of a change, with the login that made it, its key, request and result.
CREATE FUNCTION fraud_desk_audit(p_actor text, p_action text, p_object text, p_before jsonb, p_after jsonb,
                                 p_key text, p_request jsonb, p_result jsonb)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, public, pg_temp
AS $$
  INSERT INTO audit_log (actor, action, object, before, after, login, idempotency_key, request, result)
  VALUES (p_actor, p_action, p_object, p_before, p_after, session_user, p_key, p_request, p_result);
$$;
REVOKE EXECUTE ON FUNCTION fraud_desk_require_lead(text), fraud_desk_replay(text, text, jsonb),
  fraud_desk_audit(text, text, text, jsonb, jsonb, text, jsonb, jsonb) FROM PUBLIC;

DROP FUNCTION fraud_case_assign(bigint, text, text), fraud_case_close(bigint, text, text),
  fraud_case_comment(bigint, text, text), fraud_list_add(text, text, text, integer, text),
  fraud_list_end(bigint, text), fraud_suppression_add(text, text, text, integer, text),
  fraud_suppression_end(bigint, text);

-- An analyst assigns a case to themself, unless another analyst has it; a lead assigns to
-- anyone, and takes a case from anyone.
CREATE FUNCTION fraud_case_assign(p_case bigint, p_assignee text, p_actor text, p_key text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  request jsonb := jsonb_build_object('case', p_case, 'assignee', p_assignee, 'actor', p_actor);
  was jsonb;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_assignee, '') = '' OR length(p_assignee) > 100 THEN
    RAISE EXCEPTION 'an assignee (at most 100 characters) and an actor are required' USING ERRCODE = '22023';
  END IF;
  IF p_assignee <> p_actor THEN
    PERFORM fraud_desk_require_lead('assign a case to someone else');
  END IF;
  IF fraud_desk_replay(p_key, 'case.assign', request) IS NOT NULL THEN
    RETURN;
  END IF;
  was := fraud_case_lock_open(p_case);
  IF was ->> 'state' = 'assigned' AND was ->> 'assignee' <> p_actor THEN
    PERFORM fraud_desk_require_lead('take a case assigned to ' || (was ->> 'assignee'));
  END IF;
  UPDATE fraud_cases SET state = 'assigned', assignee = p_assignee, updated_at = now()
  WHERE case_id = p_case RETURNING to_jsonb(fraud_cases) INTO now_is;
  PERFORM fraud_desk_audit(p_actor, 'case.assign', 'case:' || p_case, was, now_is, p_key, request, NULL);
END $$;

-- Closes the case at `p_version`, the version the analyst was shown: a case that has moved
-- since (an event joined) is refused, since its disposition would label what nobody saw. A
-- case assigned to someone is theirs to close, or a lead's.
-- Fraud and legitimate label each of its transactions that has no case label yet; unsure
-- labels nothing. Returns how many it labelled.
CREATE FUNCTION fraud_case_close(p_case bigint, p_version integer, p_disposition text, p_actor text,
                                 p_key text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  request jsonb := jsonb_build_object('case', p_case, 'version', p_version, 'disposition', p_disposition,
                                      'actor', p_actor);
  replayed jsonb;
  was jsonb;
  now_is jsonb;
  labelled integer := 0;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_version IS NULL OR p_disposition IS NULL
     OR p_disposition NOT IN ('fraud', 'legitimate', 'unsure') THEN
    RAISE EXCEPTION 'a version, a disposition (fraud, legitimate or unsure) and an actor are required'
      USING ERRCODE = '22023';
  END IF;
  replayed := fraud_desk_replay(p_key, 'case.close', request);
  IF replayed IS NOT NULL THEN
    RETURN replayed::integer;
  END IF;
  was := fraud_case_lock_open(p_case);
  IF was ->> 'state' = 'assigned' AND was ->> 'assignee' <> p_actor THEN
    PERFORM fraud_desk_require_lead('close a case assigned to ' || (was ->> 'assignee'));
  END IF;
  IF (was ->> 'version')::integer <> p_version THEN
    RAISE EXCEPTION 'case % changed since it was shown (version %, now %): reload it and close it again',
      p_case, p_version, was ->> 'version' USING ERRCODE = '55000';
  END IF;
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
  PERFORM fraud_desk_audit(p_actor, 'case.close', 'case:' || p_case, was, now_is, p_key, request,
                           to_jsonb(labelled));
  RETURN labelled;
END $$;

CREATE FUNCTION fraud_case_comment(p_case bigint, p_body text, p_actor text, p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  request jsonb := jsonb_build_object('case', p_case, 'body', p_body, 'actor', p_actor);
  replayed jsonb;
  id bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR coalesce(p_body, '') = '' OR length(p_body) > 4000 THEN
    RAISE EXCEPTION 'a comment (1 to 4000 characters) and an actor are required' USING ERRCODE = '22023';
  END IF;
  replayed := fraud_desk_replay(p_key, 'case.comment', request);
  IF replayed IS NOT NULL THEN
    RETURN replayed::bigint;
  END IF;
  IF NOT EXISTS (SELECT FROM fraud_cases WHERE case_id = p_case) THEN
    RAISE EXCEPTION 'case % does not exist', p_case USING ERRCODE = 'P0002';
  END IF;
  INSERT INTO fraud_case_comments (case_id, author, body) VALUES (p_case, p_actor, p_body)
  RETURNING comment_id, to_jsonb(fraud_case_comments) INTO id, now_is;
  PERFORM fraud_desk_audit(p_actor, 'case.comment', 'case:' || p_case, NULL, now_is, p_key, request, to_jsonb(id));
  RETURN id;
END $$;

-- Adding to an allow_ list lowers decisions: a lead's. Any other list raises them.
CREATE FUNCTION fraud_list_add(p_list text, p_value text, p_reason text, p_days integer, p_actor text,
                               p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  request jsonb := jsonb_build_object('list', p_list, 'value', p_value, 'reason', p_reason, 'days', p_days,
                                      'actor', p_actor);
  replayed jsonb;
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
  IF p_list LIKE 'allow\_%' THEN
    PERFORM fraud_desk_require_lead('add to an allow list: it lowers decisions');
  END IF;
  replayed := fraud_desk_replay(p_key, 'list.add', request);
  IF replayed IS NOT NULL THEN
    RETURN replayed::bigint;
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  INSERT INTO fraud_list_entries (list_name, value, reason, author, expires_at, added_version)
  VALUES (p_list, p_value, p_reason, p_actor, now() + p_days * interval '1 day', v)
  RETURNING entry_id, to_jsonb(fraud_list_entries) INTO id, now_is;
  PERFORM fraud_desk_audit(p_actor, 'list.add', 'list_entry:' || id, NULL, now_is, p_key, request, to_jsonb(id));
  RETURN id;
END $$;

-- Ending an entry of any list but an allow_ list lowers decisions (a deny-listed card goes
-- through again): a lead's. Ending an allow entry raises them: anyone's.
CREATE FUNCTION fraud_list_end(p_entry bigint, p_actor text, p_key text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  request jsonb := jsonb_build_object('entry', p_entry, 'actor', p_actor);
  list text;
  was jsonb;
  now_is jsonb;
  v bigint;
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  SELECT list_name INTO list FROM fraud_list_entries WHERE entry_id = p_entry;
  IF FOUND AND list NOT LIKE 'allow\_%' THEN
    PERFORM fraud_desk_require_lead('end an entry of ' || list || ': it lowers decisions');
  END IF;
  IF fraud_desk_replay(p_key, 'list.end', request) IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT to_jsonb(e) INTO was FROM fraud_list_entries e
  WHERE entry_id = p_entry AND ended_at IS NULL AND (expires_at IS NULL OR expires_at > now()) FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no list entry % is in force', p_entry USING ERRCODE = 'P0002';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  UPDATE fraud_list_entries SET ended_at = now(), ended_version = v, ended_by = p_actor
  WHERE entry_id = p_entry RETURNING to_jsonb(fraud_list_entries) INTO now_is;
  PERFORM fraud_desk_audit(p_actor, 'list.end', 'list_entry:' || p_entry, was, now_is, p_key, request, NULL);
END $$;

-- A suppression lowers decisions: a lead's.
CREATE FUNCTION fraud_suppression_add(p_rule text, p_account text, p_reason text, p_days integer, p_actor text,
                                      p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  request jsonb := jsonb_build_object('rule', p_rule, 'account', p_account, 'reason', p_reason, 'days', p_days,
                                      'actor', p_actor);
  replayed jsonb;
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
  PERFORM fraud_desk_require_lead('suppress a rule: it lowers decisions');
  replayed := fraud_desk_replay(p_key, 'suppression.add', request);
  IF replayed IS NOT NULL THEN
    RETURN replayed::bigint;
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  INSERT INTO fraud_suppressions (rule_id, account_id, reason, author, expires_at, added_version)
  VALUES (p_rule, p_account, p_reason, p_actor, now() + p_days * interval '1 day', v)
  RETURNING suppression_id, to_jsonb(fraud_suppressions) INTO id, now_is;
  PERFORM fraud_desk_audit(p_actor, 'suppression.add', 'suppression:' || id, NULL, now_is, p_key, request,
                           to_jsonb(id));
  RETURN id;
END $$;

-- Ending a suppression raises decisions: anyone's.
CREATE FUNCTION fraud_suppression_end(p_suppression bigint, p_actor text, p_key text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  request jsonb := jsonb_build_object('suppression', p_suppression, 'actor', p_actor);
  was jsonb;
  now_is jsonb;
  v bigint;
BEGIN
  IF coalesce(p_actor, '') = '' THEN
    RAISE EXCEPTION 'an actor is required' USING ERRCODE = '22023';
  END IF;
  IF fraud_desk_replay(p_key, 'suppression.end', request) IS NOT NULL THEN
    RETURN;
  END IF;
  SELECT to_jsonb(s) INTO was FROM fraud_suppressions s
  WHERE suppression_id = p_suppression AND ended_at IS NULL AND expires_at > now() FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no suppression % is in force', p_suppression USING ERRCODE = 'P0002';
  END IF;
  UPDATE fraud_list_version SET version = version + 1 RETURNING version INTO v;
  UPDATE fraud_suppressions SET ended_at = now(), ended_version = v, ended_by = p_actor
  WHERE suppression_id = p_suppression RETURNING to_jsonb(fraud_suppressions) INTO now_is;
  PERFORM fraud_desk_audit(p_actor, 'suppression.end', 'suppression:' || p_suppression, was, now_is, p_key, request,
                           NULL);
END $$;

REVOKE EXECUTE ON FUNCTION fraud_case_assign(bigint, text, text, text),
  fraud_case_close(bigint, integer, text, text, text), fraud_case_comment(bigint, text, text, text),
  fraud_list_add(text, text, text, integer, text, text), fraud_list_end(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text, text), fraud_suppression_end(bigint, text, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_case_assign(bigint, text, text, text),
  fraud_case_close(bigint, integer, text, text, text), fraud_case_comment(bigint, text, text, text),
  fraud_list_add(text, text, text, integer, text, text), fraud_list_end(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text, text), fraud_suppression_end(bigint, text, text)
  TO fraud_console;
