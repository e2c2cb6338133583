-- The batch opens cases (store/cases.cpp) with four columns: the account, the decision, the
-- event count and the latest event's time. 0013 granted it INSERT on every column, so the
-- service's credentials could insert a case already closed, "closed by alice, legitimate",
-- with no audit row. Now it may insert only those four: every other column takes its
-- default, so a case the service makes is open, unassigned and undisposed (the table's
-- CHECK ties state to disposition). Only fraud_case_close() closes a case.
--
-- Catalog changes only: no table lock beyond the moment a batch's statement does not hold one.
REVOKE INSERT ON fraud_cases FROM fraud_service;
GRANT INSERT (account_id, decision, event_count, last_event_at) ON fraud_cases TO fraud_service;
