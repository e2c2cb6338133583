-- The definer role of the analysts' desk draws ids only from the desk's own sequences, and the
-- audit's canonical text is computed only where the chain is sealed (issue 29).
--
-- 0025 granted fraud_desk_owner USAGE on every sequence in the schema, the service's included
-- (alerts, the outbox, rejected events, duplicate conflicts, cases, the applied batches'
-- order), so a flaw in a desk function could draw numbers from the service's sequences and
-- leave gaps in its order. fraud_audit_canonical() was executable by PUBLIC, as every new
-- function is, though only the chain's trigger (run as fraud_desk_owner) and the owner use it.
-- privilege_test.cpp, which now tries every privilege of every relation, column, sequence and
-- function as each role, found both.
-- Catalog changes only: no table is locked.
SET LOCAL lock_timeout = '5s';

REVOKE USAGE ON SEQUENCE applied_batches, duplicate_conflicts_conflict_id_seq, fraud_alerts_alert_id_seq,
  fraud_cases_case_id_seq, outbox_outbox_id_seq, rejected_events_rejected_id_seq FROM fraud_desk_owner;

REVOKE EXECUTE ON FUNCTION fraud_audit_canonical(audit_log) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_audit_canonical(audit_log) TO fraud_desk_owner;
