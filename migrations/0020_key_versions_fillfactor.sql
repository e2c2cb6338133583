-- Every batch bumps the version of each key its events carry (0009): an UPDATE of a row whose
-- only change is a column no index holds, which PostgreSQL can make a heap-only tuple (no new
-- index entry, no index page dirtied) when the row's page has room for the new version. At
-- the default fillfactor a page is filled by inserts to the brim, and a bump moves the row to
-- another page and adds an index entry. Leaving a third of each page free keeps most bumps on
-- their page (docs/BENCHMARKS.md measures it).
--
-- Only pages written from now on are kept so; existing ones fill as before until their rows
-- move. A catalog change: a moment's lock.
ALTER TABLE feature_key_versions SET (fillfactor = 70);
