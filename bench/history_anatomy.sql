-- Where the history insert's time goes (docs/BENCHMARKS.md, "What limits each missed target"). It is
-- 40 % of PostgreSQL's time in bench/run's step 1; this takes it apart on copies of its
-- shape, 100,000 rows per statement as bench-load makes them (20,000 accounts, each with its
-- card and device; 300 merchants; a 650-byte body), one variant at a time:
--
--   psql "$FRAUD_POSTGRES_URL" -X -f bench/history_anatomy.sql
--
-- Each variant is its own table, dropped at the end; nothing of the service's is touched.
\set ON_ERROR_STOP on
CREATE TEMP TABLE anatomy_rows AS
SELECT g, 'bench-' || g AS id, timestamptz '2026-11-01' + (g / 1000) * interval '1 minute' AS t,
       'acc-' || (hashint4(g) & 32767) % 20000 AS a, 'm-' || g % 300 AS m,
       repeat('{"event_id":"x","k":"v"}', 27) AS body
FROM generate_series(1, 100000) g;

-- A table of the history's shape: its primary key and, with `indexed`, the four key-field
-- indexes these events fill (account, card, device, merchant; the other three are partial
-- and skip the NULLs); partitioned by day or not, logged or not, in a collation.
CREATE FUNCTION pg_temp.anatomy_table(name text, primary_key boolean, indexed boolean, partitioned boolean,
                                      logged boolean, in_collation text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE %s TABLE %I (s text COLLATE %I, id text COLLATE %I, t timestamptz, a text COLLATE %I,
                    cf text COLLATE %I, d text COLLATE %I, m text COLLATE %I, body text %s) %s',
                 CASE WHEN logged THEN '' ELSE 'UNLOGGED' END, name, in_collation, in_collation, in_collation, in_collation,
                 in_collation, in_collation, CASE WHEN primary_key THEN ', PRIMARY KEY (s, id, t)' ELSE '' END,
                 CASE WHEN partitioned THEN 'PARTITION BY RANGE (t)' ELSE '' END);
  IF partitioned THEN
    -- Before PostgreSQL 18 a partition does not inherit UNLOGGED: say it again.
    EXECUTE format('CREATE %s TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   CASE WHEN logged THEN '' ELSE 'UNLOGGED' END, name || '_day', name, '2026-11-01', '2026-11-02');
  END IF;
  IF indexed THEN
    EXECUTE format('CREATE INDEX ON %I (a, t); CREATE INDEX ON %I (cf, t); CREATE INDEX ON %I (d, t);
                    CREATE INDEX ON %I (m, t)', name, name, name, name);
  END IF;
END $$;
--                                   name        key    indexed partitioned logged collation
SELECT pg_temp.anatomy_table('anatomy_service',  true,  true,   true,       true,  'default'),
       pg_temp.anatomy_table('anatomy_plain',    true,  true,   false,      true,  'default'),
       pg_temp.anatomy_table('anatomy_insert',   true,  true,   true,       true,  'default'),
       pg_temp.anatomy_table('anatomy_unlogged', true,  true,   true,       false, 'default'),
       pg_temp.anatomy_table('anatomy_c',        true,  true,   true,       true,  'C'),
       pg_temp.anatomy_table('anatomy_key_only', true,  false,  true,       true,  'default'),
       pg_temp.anatomy_table('anatomy_bare',     false, false,  true,       true,  'default');
CHECKPOINT;

\set rows 'SELECT '''', id, t, a, ''card-'' || a, ''dev-'' || a, m, body FROM anatomy_rows'
\timing on
\echo 1. as the service writes it: partitioned by day, 5 indexes, ON CONFLICT DO NOTHING
INSERT INTO anatomy_service :rows ON CONFLICT DO NOTHING;
\echo 2. the same, unpartitioned
INSERT INTO anatomy_plain :rows ON CONFLICT DO NOTHING;
\echo 3. without ON CONFLICT
INSERT INTO anatomy_insert :rows;
\echo 4. unlogged: no WAL
INSERT INTO anatomy_unlogged :rows ON CONFLICT DO NOTHING;
\echo 5. key columns in the C collation, not the database default
INSERT INTO anatomy_c :rows ON CONFLICT DO NOTHING;
\echo 6. the primary key alone
INSERT INTO anatomy_key_only :rows ON CONFLICT DO NOTHING;
\echo 7. no index at all, so no ON CONFLICT either
INSERT INTO anatomy_bare :rows;
\timing off

DROP TABLE anatomy_service, anatomy_plain, anatomy_insert, anatomy_unlogged, anatomy_c, anatomy_key_only,
           anatomy_bare;
