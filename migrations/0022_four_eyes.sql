-- Four eyes on everything that lowers the bank's decisions (DESIGN's eighth invariant, issue
-- 29): an entry on an allow_ list, a suppression, the end of an entry of any other list (a
-- deny-listed card goes through again), and closing a block case as legitimate. 0019 let one
-- lead make each. Now none of them is made on one person's word: the console's direct call
-- is refused (FR428), and the change is proposed instead; it takes effect when a lead other
-- than the one who proposed it approves it, within 24 hours. Proposal, approval and the change
-- itself are each audited. What the database cannot tell apart is two leads sharing the
-- leads' login: it compares the names the console asserts (a login per role, not per person).
--
-- The functions that make these changes are kept under new names (fraud_apply_…), callable
-- only by their owner: by the approval, and by the public functions of the same old names,
-- which now refuse what needs a second lead and pass the rest on.
--
-- Locks: none held beyond a moment; the new table is empty.
CREATE TABLE fraud_proposals (
  proposal_id    bigserial   PRIMARY KEY,
  action         text        NOT NULL CHECK (action IN ('list.add', 'list.end', 'suppression.add', 'case.close')),
  object         text        NOT NULL,  -- what it changes: list:allow_accounts, list_entry:5, suppression, case:7
  request        jsonb       NOT NULL,  -- the change's arguments
  subject        jsonb,                 -- what it changes as it was when proposed (the entry, the case), to show the approver
  proposed_by    text        NOT NULL,
  proposed_login text        NOT NULL,
  proposed_at    timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  state          text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'rejected')),
  decided_by     text,
  decided_at     timestamptz,
  result         jsonb,                 -- what the change returned: the entry's id, the labels' count
  CHECK ((state = 'pending') = (decided_by IS NULL AND decided_at IS NULL))
);
CREATE INDEX fraud_proposals_pending ON fraud_proposals (proposed_at) WHERE state = 'pending';
-- Decided proposals are kept, as the audit is; a proposal changes only by its decision, once
-- (anything else, such as its request before approval, only by break glass: 0018).
CREATE FUNCTION fraud_proposal_decided_only()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF NOT (OLD.state = 'pending' AND NEW.state <> 'pending'
          AND (NEW.action, NEW.object, NEW.request, NEW.subject, NEW.proposed_by, NEW.proposed_login,
               NEW.proposed_at, NEW.expires_at) IS NOT DISTINCT FROM
              (OLD.action, OLD.object, OLD.request, OLD.subject, OLD.proposed_by, OLD.proposed_login,
               OLD.proposed_at, OLD.expires_at)) THEN
    PERFORM fraud_break_glass('a proposal changes only by its decision, once: UPDATE refused', TG_TABLE_NAME, TG_OP,
                              to_jsonb(OLD), to_jsonb(NEW));
  END IF;
  RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_proposal_decided_only() FROM PUBLIC;
CREATE TRIGGER fraud_proposals_decided_only BEFORE UPDATE ON fraud_proposals
  FOR EACH ROW EXECUTE FUNCTION fraud_proposal_decided_only();
ALTER TABLE fraud_proposals ENABLE ALWAYS TRIGGER fraud_proposals_decided_only;
CREATE TRIGGER fraud_proposals_kept BEFORE DELETE ON fraud_proposals
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_proposals_no_truncate BEFORE TRUNCATE ON fraud_proposals
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();
ALTER TABLE fraud_proposals ENABLE ALWAYS TRIGGER fraud_proposals_kept;
ALTER TABLE fraud_proposals ENABLE ALWAYS TRIGGER fraud_proposals_no_truncate;

ALTER FUNCTION fraud_list_add(text, text, text, integer, text, text) RENAME TO fraud_apply_list_add;
ALTER FUNCTION fraud_list_end(bigint, text, text) RENAME TO fraud_apply_list_end;
ALTER FUNCTION fraud_suppression_add(text, text, text, integer, text, text) RENAME TO fraud_apply_suppression_add;
ALTER FUNCTION fraud_case_close(bigint, integer, text, text, text) RENAME TO fraud_apply_case_close;
REVOKE EXECUTE ON FUNCTION fraud_apply_list_add(text, text, text, integer, text, text),
  fraud_apply_list_end(bigint, text, text), fraud_apply_suppression_add(text, text, text, integer, text, text),
  fraud_apply_case_close(bigint, integer, text, text, text) FROM fraud_console;

-- Refuses (FR428) a change that lowers decisions: it is proposed, and made by an approval.
-- p_what says why (fraud_desk_lowers); NULL, the change does not lower them and goes ahead.
CREATE FUNCTION fraud_desk_needs_second_lead(p_what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF p_what IS NULL THEN
    RETURN;
  END IF;
  RAISE EXCEPTION '% lowers decisions: it takes effect when a second lead approves it', p_what USING ERRCODE = 'FR428';
END $$;
REVOKE EXECUTE ON FUNCTION fraud_desk_needs_second_lead(text) FROM PUBLIC;

-- Why `action` with `request` needs a second lead, or NULL when it does not.
CREATE FUNCTION fraud_desk_lowers(p_action text, p_request jsonb)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  list text;
  decision text;
BEGIN
  IF p_action = 'list.add' AND p_request ->> 'list' LIKE 'allow\_%' THEN
    RETURN 'adding to an allow list';
  ELSIF p_action = 'list.end' THEN
    SELECT list_name INTO list FROM fraud_list_entries WHERE entry_id = (p_request ->> 'entry')::bigint;
    IF list NOT LIKE 'allow\_%' THEN
      RETURN 'ending an entry of ' || list;
    END IF;
  ELSIF p_action = 'suppression.add' THEN
    RETURN 'suppressing a rule';
  ELSIF p_action = 'case.close' AND p_request ->> 'disposition' = 'legitimate' THEN
    -- Locked: a batch raising the case to block meanwhile is either committed (and seen
    -- here) or waits until this transaction ends.
    SELECT c.decision INTO decision FROM fraud_cases c WHERE case_id = (p_request ->> 'case')::bigint FOR UPDATE;
    IF decision = 'block' THEN
      RETURN 'closing a block case as legitimate';
    END IF;
  END IF;
  RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_desk_lowers(text, jsonb) FROM PUBLIC;

-- The old names: what does not lower decisions is made at once, as before.
CREATE FUNCTION fraud_list_add(p_list text, p_value text, p_reason text, p_days integer, p_actor text,
                               p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM fraud_desk_needs_second_lead(fraud_desk_lowers('list.add', jsonb_build_object('list', p_list)));
  RETURN fraud_apply_list_add(p_list, p_value, p_reason, p_days, p_actor, p_key);
END $$;

CREATE FUNCTION fraud_list_end(p_entry bigint, p_actor text, p_key text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM fraud_desk_needs_second_lead(fraud_desk_lowers('list.end', jsonb_build_object('entry', p_entry)));
  PERFORM fraud_apply_list_end(p_entry, p_actor, p_key);
END $$;

CREATE FUNCTION fraud_suppression_add(p_rule text, p_account text, p_reason text, p_days integer, p_actor text,
                                      p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM fraud_desk_needs_second_lead(fraud_desk_lowers('suppression.add', '{}'));
  RETURN NULL;
END $$;

CREATE FUNCTION fraud_case_close(p_case bigint, p_version integer, p_disposition text, p_actor text,
                                 p_key text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
BEGIN
  PERFORM fraud_desk_needs_second_lead(
    fraud_desk_lowers('case.close', jsonb_build_object('case', p_case, 'disposition', p_disposition)));
  RETURN fraud_apply_case_close(p_case, p_version, p_disposition, p_actor, p_key);
END $$;

-- Proposes a change that needs a second lead: anyone may. Returns the proposal's id.
CREATE FUNCTION fraud_propose(p_action text, p_request jsonb, p_actor text, p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  request jsonb := jsonb_build_object('action', p_action, 'request', p_request, 'actor', p_actor);
  replayed jsonb;
  why text;
  id bigint;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_request IS NULL OR jsonb_typeof(p_request) <> 'object' THEN
    RAISE EXCEPTION 'an action, its request and an actor are required' USING ERRCODE = '22023';
  END IF;
  why := fraud_desk_lowers(p_action, p_request);
  IF why IS NULL THEN
    RAISE EXCEPTION '% with this request lowers no decision: make it directly', p_action USING ERRCODE = '22023';
  END IF;
  replayed := fraud_desk_replay(p_key, 'proposal.propose', request);
  IF replayed IS NOT NULL THEN
    RETURN replayed::bigint;
  END IF;
  INSERT INTO fraud_proposals (action, object, request, subject, proposed_by, proposed_login, expires_at)
  VALUES (p_action,
          CASE p_action WHEN 'list.add' THEN 'list:' || (p_request ->> 'list')
                        WHEN 'list.end' THEN 'list_entry:' || (p_request ->> 'entry')
                        WHEN 'case.close' THEN 'case:' || (p_request ->> 'case')
                        ELSE 'suppression' END,
          p_request,
          CASE p_action WHEN 'list.end' THEN (SELECT to_jsonb(e) FROM fraud_list_entries e
                                              WHERE entry_id = (p_request ->> 'entry')::bigint)
                        WHEN 'case.close' THEN (SELECT to_jsonb(c) FROM fraud_cases c
                                                WHERE case_id = (p_request ->> 'case')::bigint) END,
          p_actor, session_user, now() + interval '24 hours')
  RETURNING proposal_id, to_jsonb(fraud_proposals) INTO id, now_is;
  PERFORM fraud_desk_audit(p_actor, 'proposal.propose', 'proposal:' || id, NULL, now_is, p_key, request, to_jsonb(id));
  RETURN id;
END $$;

-- A lead other than the proposer approves (the change is made now, as the proposer asked
-- it, and its own audit row written) or rejects a pending proposal; the proposer may only
-- withdraw (reject) their own. Returns the proposal as it is now.
CREATE FUNCTION fraud_proposal_decide(p_proposal bigint, p_approve boolean, p_actor text, p_key text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
  action text := CASE WHEN p_approve THEN 'proposal.approve' ELSE 'proposal.reject' END;
  request jsonb := jsonb_build_object('proposal', p_proposal, 'approve', p_approve, 'actor', p_actor);
  replayed jsonb;
  p fraud_proposals%ROWTYPE;
  r jsonb;
  outcome jsonb;
  now_is jsonb;
BEGIN
  IF coalesce(p_actor, '') = '' OR p_approve IS NULL THEN
    RAISE EXCEPTION 'a decision and an actor are required' USING ERRCODE = '22023';
  END IF;
  PERFORM fraud_desk_require_lead('approve or reject a proposal');
  replayed := fraud_desk_replay(p_key, action, request);
  IF replayed IS NOT NULL THEN
    RETURN replayed;
  END IF;
  SELECT * INTO p FROM fraud_proposals WHERE proposal_id = p_proposal FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'proposal % does not exist', p_proposal USING ERRCODE = 'P0002';
  ELSIF p.state <> 'pending' THEN
    RAISE EXCEPTION 'proposal % is % already', p_proposal, p.state USING ERRCODE = '55000';
  ELSIF p.expires_at <= now() THEN
    RAISE EXCEPTION 'proposal % expired at %: propose it again', p_proposal, p.expires_at USING ERRCODE = '55000';
  ELSIF p_approve AND p.proposed_by = p_actor THEN
    RAISE EXCEPTION 'a second lead approves a proposal, not the one who proposed it' USING ERRCODE = '42501';
  END IF;
  IF p_approve THEN
    r := p.request;
    CASE p.action
      WHEN 'list.add' THEN
        outcome := to_jsonb(fraud_apply_list_add(r ->> 'list', r ->> 'value', r ->> 'reason', (r ->> 'days')::integer,
                                                p.proposed_by, NULL));
      WHEN 'list.end' THEN
        PERFORM fraud_apply_list_end((r ->> 'entry')::bigint, p.proposed_by, NULL);
      WHEN 'suppression.add' THEN
        outcome := to_jsonb(fraud_apply_suppression_add(r ->> 'rule', r ->> 'account', r ->> 'reason',
                                                       (r ->> 'days')::integer, p.proposed_by, NULL));
      WHEN 'case.close' THEN
        outcome := to_jsonb(fraud_apply_case_close((r ->> 'case')::bigint, (r ->> 'version')::integer,
                                                  r ->> 'disposition', p.proposed_by, NULL));
    END CASE;
  END IF;
  UPDATE fraud_proposals
  SET state = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END, decided_by = p_actor, decided_at = now(),
      result = outcome
  WHERE proposal_id = p_proposal RETURNING to_jsonb(fraud_proposals) INTO now_is;
  PERFORM fraud_desk_audit(p_actor, action, 'proposal:' || p_proposal, to_jsonb(p), now_is, p_key, request, now_is);
  RETURN now_is;
END $$;

REVOKE EXECUTE ON FUNCTION fraud_list_add(text, text, text, integer, text, text), fraud_list_end(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text, text), fraud_case_close(bigint, integer, text, text, text),
  fraud_propose(text, jsonb, text, text), fraud_proposal_decide(bigint, boolean, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_list_add(text, text, text, integer, text, text), fraud_list_end(bigint, text, text),
  fraud_suppression_add(text, text, text, integer, text, text), fraud_case_close(bigint, integer, text, text, text),
  fraud_propose(text, jsonb, text, text), fraud_proposal_decide(bigint, boolean, text, text) TO fraud_console;
GRANT SELECT ON fraud_proposals TO fraud_console;
