-- The history's key-field indexes only for the fields some rule reads (issue 28). Every event
-- wrote an entry into the index of each of its seven key fields it carries, about four, while
-- the starter rules read three fields. Now `fraud-consumer migrate` keeps an index for each
-- field the rules file it is given, or any replica, registered (store/key_indexes.cpp),
-- building a missing one CONCURRENTLY partition by partition, so batches go on. A replica
-- whose rules read a field without a valid index retries its batches, naming the field and
-- the command (reason missing_index), rather than read the history without one.
--
-- Here the indexes of fields no replica registered (0012) go; the account's stays, as the
-- console reads a case's events by account. DROP INDEX on a partitioned table takes its
-- exclusive lock for a moment: give up after five seconds rather than stall every batch
-- behind a backtest, and let the operator run `migrate` again.
SET LOCAL lock_timeout = '5s';

DO $$
DECLARE
  f record;
BEGIN
  FOR f IN SELECT * FROM (VALUES ('customer_id', 'transactions_customer'),
                                 ('card.fingerprint', 'transactions_card'),
                                 ('device.id', 'transactions_device'),
                                 ('device.ip', 'transactions_ip'),
                                 ('merchant.id', 'transactions_merchant'),
                                 ('counterparty.account', 'transactions_counterparty')) AS v(key_field, index_name)
  LOOP
    IF NOT EXISTS (SELECT FROM feature_key_fields k WHERE k.key_field = f.key_field AND k.maintained) THEN
      EXECUTE format('DROP INDEX IF EXISTS %I', f.index_name);
    END IF;
  END LOOP;
END $$;
