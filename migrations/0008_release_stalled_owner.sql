-- A replica frozen (SIGSTOP, swapped out, a stuck NIC) in the middle of a batch holds its
-- partition's consumer_offsets row lock. If it froze while PostgreSQL was sending it a result,
-- its backend is "active", not idle in transaction, so idle_in_transaction_session_timeout
-- never ends it; and a statement timeout cannot either, because PostgreSQL defers a cancel
-- while it is blocked writing to the client. Only terminating the backend frees the lock.
--
-- The partition's new owner calls this after its claim has failed on that lock for longer
-- than the stall limit. It ends only the backend whose open transaction holds the row (the
-- row's xmax is that transaction's id), and only if that transaction has run longer than
-- the limit (at least 30 s, whatever the caller asks): a batch takes milliseconds. The zombie's transaction rolls back, so it writes
-- nothing (invariant 3), and its replica finds the connection gone and re-reads.
--
-- SECURITY DEFINER: it runs as the tables' owner, which must be allowed to see other
-- sessions' transactions and signal them (superuser, or a member of pg_read_all_stats and
-- pg_signal_backend; a DBA grants these once). Without them it ends nothing and says so, and
-- the claim keeps retrying, visible in fraud_database_retries_total{reason="lock_timeout"}.
CREATE FUNCTION fraud_release_stalled_owner(p_group text, p_topic text, p_partition integer,
                                            p_stalled_for interval)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
  holder integer;
BEGIN
  SELECT a.pid INTO holder
  FROM consumer_offsets o
  JOIN pg_stat_activity a ON a.backend_xid = o.xmax
  WHERE o.group_id = p_group AND o.topic = p_topic AND o.partition = p_partition
    AND o.xmax <> '0'::xid
    AND a.pid <> pg_backend_pid()
    AND a.xact_start < now() - greatest(p_stalled_for, interval '30 seconds');  -- never a live batch
  IF holder IS NULL THEN
    RETURN NULL;
  END IF;
  IF NOT pg_terminate_backend(holder) THEN
    RETURN NULL;
  END IF;
  RETURN holder;
END $$;
REVOKE ALL ON FUNCTION fraud_release_stalled_owner(text, text, integer, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_release_stalled_owner(text, text, integer, interval) TO fraud_service;
