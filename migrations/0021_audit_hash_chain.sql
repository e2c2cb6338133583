-- A hash chain over the audit (issue 29). 0018's trigger refuses every UPDATE, DELETE and
-- TRUNCATE of audit_log, but the owner or a superuser can still disable it; the chain makes
-- such a rewrite visible. Each row, as it is inserted, takes the next number of the chain
-- (chain_seq) and seals itself: row_hash = sha256(the previous row's hash || the row's
-- canonical text), the canonical text being fraud_audit_canonical() below, whose copy
-- `fraud-console audit verify` (cases/audit_chain.cpp) carries and recomputes every row with.
-- A changed row breaks its own seal; a deleted one leaves a gap in chain_seq and a link that
-- does not hold; a row inserted with the trigger off has no seal. Rewriting the whole chain
-- after a change passes, but moves its head: `audit verify` prints the head, and with
-- --head SEQ:HASH checks that a head printed earlier (and kept where the owner cannot write)
-- is still in the chain.
--
-- The head lives in audit_chain; every insert locks it until its transaction ends, so
-- audit rows chain one at a time (the console's changes are a few a minute, not a hot path).
--
-- Existing rows are sealed here, in audit_id order, with 0018's trigger off for this
-- statement only. Locks: audit_log's exclusive lock for the ALTERs, and its rows while they
-- are sealed; the console's changes wait that long (seconds for a million rows), the
-- batches never write the audit.
CREATE TABLE audit_chain (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  seq      bigint  NOT NULL,  -- the last row's chain_seq
  hash     bytea   NOT NULL   -- the last row's row_hash
);
-- The chain starts from a fixed hash, so the first row is sealed like every other.
INSERT INTO audit_chain (seq, hash) VALUES (0, sha256(convert_to('fraud audit chain', 'UTF8')));

ALTER TABLE audit_log ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN row_hash bytea;

-- What a row's seal covers: every column but the seal itself, times in UTC microseconds so
-- that no session's time zone changes the text.
CREATE FUNCTION fraud_audit_canonical(r audit_log)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT jsonb_build_object(
    'chain_seq', r.chain_seq, 'audit_id', r.audit_id,
    'at', (extract(epoch FROM r.at) * 1000000)::bigint,
    'actor', r.actor, 'action', r.action, 'object', r.object, 'before', r.before, 'after', r.after,
    'reason', r.reason, 'login', r.login, 'idempotency_key', r.idempotency_key, 'request', r.request,
    'result', r.result)::text
$$;

CREATE FUNCTION fraud_audit_seal()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  head audit_chain%ROWTYPE;
BEGIN
  SELECT * INTO head FROM audit_chain FOR UPDATE;
  NEW.chain_seq := head.seq + 1;
  NEW.prev_hash := head.hash;
  NEW.row_hash := sha256(head.hash || convert_to(fraud_audit_canonical(NEW), 'UTF8'));
  UPDATE audit_chain SET seq = NEW.chain_seq, hash = NEW.row_hash;
  RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_audit_seal() FROM PUBLIC;

-- The rows there are, sealed in the order they were written.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DO $$
DECLARE
  r audit_log%ROWTYPE;
  head audit_chain%ROWTYPE;
BEGIN
  SELECT * INTO head FROM audit_chain FOR UPDATE;
  FOR r IN SELECT * FROM audit_log ORDER BY audit_id LOOP
    r.chain_seq := head.seq + 1;
    r.prev_hash := head.hash;
    r.row_hash := sha256(head.hash || convert_to(fraud_audit_canonical(r), 'UTF8'));
    UPDATE audit_log SET chain_seq = r.chain_seq, prev_hash = r.prev_hash, row_hash = r.row_hash
    WHERE audit_id = r.audit_id;
    head.seq := r.chain_seq;
    head.hash := r.row_hash;
  END LOOP;
  UPDATE audit_chain SET seq = head.seq, hash = head.hash;
END $$;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;

ALTER TABLE audit_log ALTER COLUMN chain_seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN row_hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain ON audit_log (chain_seq);

-- The head moves one row at a time and is never removed: a head truncated or set back would
-- leave every later insert unsealed, or let a shortened chain pass.
CREATE FUNCTION fraud_audit_head_moves_on()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF TG_OP <> 'UPDATE' OR NEW.seq <> OLD.seq + 1 THEN
    RAISE EXCEPTION 'the audit chain''s head only moves on by one row: % refused', TG_OP USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_audit_head_moves_on() FROM PUBLIC;
CREATE TRIGGER audit_chain_moves_on BEFORE UPDATE OR DELETE ON audit_chain
  FOR EACH ROW EXECUTE FUNCTION fraud_audit_head_moves_on();
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
  FOR EACH STATEMENT EXECUTE FUNCTION fraud_audit_head_moves_on();
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_moves_on;
ALTER TABLE audit_chain ENABLE ALWAYS TRIGGER audit_chain_no_truncate;
CREATE TRIGGER audit_log_seal BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION fraud_audit_seal();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_seal;

-- The verifier reads the chain's head beside the rows.
GRANT SELECT ON audit_chain TO fraud_console;
