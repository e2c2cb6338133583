-- Which rules a suppression silenced, on each history row (issue 18). A suppression stops a
-- rule firing for one account (0015); the metric fraud_suppressed_rule_hits_total counts the
-- silenced hits, but an analyst reading an account's transactions could not tell a payment
-- no rule matched from one a suppression let through. The batch now records, per event, the
-- ids of the rules (live or shadow) whose condition held but were suppressed, as a JSON array
-- in the rule file's order. NULL: none was, or the row was written before this migration or
-- by a replica of an earlier version.
--
-- A nullable column without a default: added without rewriting the table, and replicas of
-- the previous version keep working against it. But ADD COLUMN takes the table's exclusive
-- lock, and while it waits (for a backtest's read, a prune) every batch's history insert
-- would queue behind it: give up after five seconds instead, and let the operator run
-- `migrate` again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE transactions ADD COLUMN suppressed_rules jsonb;

-- The console shows it beside the decision in a case's recent transactions.
GRANT SELECT (suppressed_rules) ON transactions TO fraud_console;
