-- The analyst's desk answers "who else used this card, this device, this address, this
-- payee?" (issue 34, cases/account_links.cpp): the console's role reads the history's columns
-- that link accounts, beside those a case already showed. Still not the event bodies (the
-- customer's details, the device's location). Each such read is logged with who asked, as
-- every case read is (console/api.cpp), and bounded by a row limit and a time budget.
GRANT SELECT (card_fingerprint, device_ip, counterparty_account) ON transactions TO fraud_console;
