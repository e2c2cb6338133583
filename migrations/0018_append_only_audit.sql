-- The audit, the labels, the comments and the events each case holds are the bank's record
-- of what its analysts did and decided. 0013 and 0015 kept them append-only by granting no
-- role UPDATE or DELETE, but the tables' owner (who runs migrations and `store prune`) and
-- any superuser could still rewrite them unseen. Now a trigger refuses UPDATE, DELETE and
-- TRUNCATE on each, whoever runs them, and DELETE and TRUNCATE of a case (a case changes as
-- events join it and analysts work it, but is never removed):
--
-- * ENABLE ALWAYS: a session with session_replication_role = replica (what logical
--   replication's apply uses, and what a superuser could set) fires them too.
-- * Break glass: a correction the bank authorised (an erasure order, a mislabelled batch) is
--   made by the owner in a transaction that first runs
--     SET LOCAL fraud.break_glass = 'INC-4711: why, and who authorised it';
--   each row it updates or deletes then leaves an audit row (action break_glass.update or
--   break_glass.delete, the table as its object, the row before and after, the session's
--   login as actor, the reason). TRUNCATE has no row to record and is refused even then; and
--   the audit itself is never corrected, break glass or not: its record of a correction is
--   the correction.
-- * What the trigger cannot stop: the owner or a superuser disabling or dropping it. That
--   is DDL, which the server logs with log_statement = 'ddl' (docs/OPERATIONS.md).
--
-- Locks: CREATE TRIGGER takes each table's SHARE ROW EXCLUSIVE lock for a moment; the
-- batches do not write these tables.
ALTER TABLE audit_log ADD COLUMN reason text;  -- why a break-glass change was made

-- The break glass every guarded table shares: lets an authorised correction through and
-- records it (the row before and after, the login, the reason), or refuses with `refusal`.
CREATE FUNCTION fraud_break_glass(p_refusal text, p_table text, p_op text, p_before jsonb, p_after jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  authorised text := nullif(current_setting('fraud.break_glass', true), '');
BEGIN
  IF authorised IS NULL OR p_op = 'TRUNCATE' OR p_table = 'audit_log' THEN
    RAISE EXCEPTION '%', p_refusal
      USING ERRCODE = '42501',
            HINT = 'An authorised correction sets fraud.break_glass first (docs/CASES.md, "Break glass").';
  END IF;
  INSERT INTO audit_log (actor, action, object, before, after, reason)
  VALUES (session_user, 'break_glass.' || lower(p_op), p_table, p_before, p_after, authorised);
END $$;
REVOKE EXECUTE ON FUNCTION fraud_break_glass(text, text, text, jsonb, jsonb) FROM PUBLIC;

CREATE FUNCTION fraud_refuse_rewrite()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM fraud_break_glass(format('%s keeps its rows: %s refused', TG_TABLE_NAME, TG_OP), TG_TABLE_NAME, TG_OP,
                            CASE WHEN TG_LEVEL = 'ROW' THEN to_jsonb(OLD) END,
                            CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(NEW) END);
  RETURN CASE WHEN TG_OP = 'UPDATE' THEN NEW ELSE OLD END;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_refuse_rewrite() FROM PUBLIC;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_labels_append_only BEFORE UPDATE OR DELETE ON fraud_labels
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_labels_no_truncate BEFORE TRUNCATE ON fraud_labels
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_case_comments_append_only BEFORE UPDATE OR DELETE ON fraud_case_comments
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_case_comments_no_truncate BEFORE TRUNCATE ON fraud_case_comments
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();

CREATE TRIGGER fraud_case_events_append_only BEFORE UPDATE OR DELETE ON fraud_case_events
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_case_events_no_truncate BEFORE TRUNCATE ON fraud_case_events
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_cases_kept BEFORE DELETE ON fraud_cases
  FOR EACH ROW EXECUTE FUNCTION fraud_refuse_rewrite();
CREATE TRIGGER fraud_cases_no_truncate BEFORE TRUNCATE ON fraud_cases
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_refuse_rewrite();

ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE fraud_labels ENABLE ALWAYS TRIGGER fraud_labels_append_only;
ALTER TABLE fraud_labels ENABLE ALWAYS TRIGGER fraud_labels_no_truncate;
ALTER TABLE fraud_case_comments ENABLE ALWAYS TRIGGER fraud_case_comments_append_only;
ALTER TABLE fraud_case_comments ENABLE ALWAYS TRIGGER fraud_case_comments_no_truncate;
ALTER TABLE fraud_case_events ENABLE ALWAYS TRIGGER fraud_case_events_append_only;
ALTER TABLE fraud_case_events ENABLE ALWAYS TRIGGER fraud_case_events_no_truncate;
ALTER TABLE fraud_cases ENABLE ALWAYS TRIGGER fraud_cases_kept;
ALTER TABLE fraud_cases ENABLE ALWAYS TRIGGER fraud_cases_no_truncate;
