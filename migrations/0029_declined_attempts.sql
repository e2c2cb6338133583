-- Declined authorisations (docs/DECISIONS.md): an event the inline door (POST /v1/decisions)
-- blocked is taken as declined by the bank, whose outbox then never publishes it. It stays in
-- the history as an attempt: counts, distinct counts and the time since the last event see
-- it (a card being tested shows in its declines); sums, averages, minima and maxima of
-- amounts leave it out (its money never moved); a rule's `where` can tell it by `declined`.
-- A constant default: PostgreSQL adds the column without rewriting a month of history.
ALTER TABLE transactions ADD COLUMN declined boolean NOT NULL DEFAULT false;
