-- Declined authorisations (docs/DECISIONS.md): an event the inline door (POST /v1/decisions)
-- blocked is taken as declined by the bank, whose outbox then never publishes it. It stays in
-- the history as an attempt: counts, distinct counts and the time since the last event see
-- it (a card being tested shows in its declines); sums, averages, minima and maxima of
-- amounts leave it out (its money never moved); a rule's `where` can tell it by `declined`.
--
-- Locks: ADD COLUMN takes ACCESS EXCLUSIVE on transactions and every partition of it. With a
-- constant default PostgreSQL changes only the catalog (no row is rewritten, no index
-- rebuilt), so the lock is held for milliseconds whatever the history's size. Getting it
-- waits for the transactions that touch the history (batches, backtests, the console), and
-- queues new ones behind it meanwhile: lock_timeout gives up after 5 s rather than stall the
-- service; run `migrate` again. Every existing row reads declined = false, as it was.
SET LOCAL lock_timeout = '5s';
ALTER TABLE transactions ADD COLUMN declined boolean NOT NULL DEFAULT false;
