-- Which rules a suppression silenced, on each history row (issue 18). A suppression stops a
-- rule firing for one account (0015); the metric fraud_suppressed_rule_hits_total counts the
-- silenced hits, but an analyst reading an account's transactions could not tell a payment
-- no rule matched from one a suppression let through. The batch now records, per event, the
-- ids of the rules whose condition held but were suppressed, as a JSON array in the rule
-- file's order; NULL when none was.
--
-- A nullable column without a default: added without rewriting the table. Replicas of the
-- previous version keep working against it (they leave it NULL), so migrate first, then
-- upgrade the replicas.
ALTER TABLE transactions ADD COLUMN suppressed_rules jsonb;

-- The console shows it beside the decision in a case's recent transactions.
GRANT SELECT (suppressed_rules) ON transactions TO fraud_console;
