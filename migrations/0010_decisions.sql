-- Every applied event's decision, not only those a rule hit: an analyst asking "why was this
-- allowed?" and a backtest comparing decisions need the allow too. Kept compactly on the
-- history row the batch writes anyway, with the rule set that decided and what the decision
-- would have been with the shadow rules live. Rows from before this migration have NULLs.
ALTER TABLE transactions
  ADD COLUMN decision         text,   -- allow, review, block
  ADD COLUMN score            integer,
  ADD COLUMN shadow_decision  text,   -- with the shadow rules live too
  ADD COLUMN rule_set_version text;
-- A shadow rule's alert shows the live decision; beside it, the one it would have made.
ALTER TABLE fraud_alerts ADD COLUMN shadow_decision text;
