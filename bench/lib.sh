# Shell functions bench/run and bench/compare share; sourced from the repository's root.
# consumer and bench_load name the binaries; bench/compare points them at other builds.
consumer=build/consumer/fraud-consumer
bench_load=build/bench/bench-load

sql() { psql "$FRAUD_POSTGRES_URL" -XAtq -c "$1"; }

# Creates database $1 as docs/OPERATIONS.md recommends ("The database"), whatever the
# cluster's default: text in the C collation (or $2), characters in UTF-8.
create_database() {
  psql "$admin_url" -XAtqc "CREATE DATABASE $1 TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE '${2:-C}' LC_CTYPE 'C.UTF-8'"
}

# Migrates the empty database FRAUD_POSTGRES_URL names. Day partitions for the filler of
# bench/run's step 5 (from 2026-10-12) and the events (from 2026-11-01), as a deployment
# running `store prune` daily has them. (`dedup prune`, its former name, below: bench/compare
# runs this with older revisions' binaries too.)
prepare_database() {
  "$consumer" migrate >/dev/null 2>&1
  "$consumer" dedup prune --from 2026-10-01 >/dev/null 2>&1
  sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
}

# Loads $2 events into topic $1 (10% redelivered); prints how many records it wrote.
load() { "$bench_load" --topic "$1" --events "$2" ${3:+--rate "$3"} ${4:+--duplicates "$4"} ${5:+--seed "$5"}; }

# $1 CPU ticks per applied event ($applied), in µs.
per_event() { awk -v t="$1" -v hz="$clock_ticks" -v n="$applied" 'BEGIN {printf "%.1f", t / hz / n * 1e6}'; }
clock_ticks=$(getconf CLK_TCK)

# CPU ticks (utime + stime) of every process of the PostgreSQL that scripts/services runs,
# the exited ones included: the postmaster reaps its backends, and their time then counts in
# its cutime and cstime. Children first, so that one exiting meanwhile is counted, if twice.
postgres_ticks() {
  local postmaster children
  postmaster=$(head -1 .local/pg/data/postmaster.pid) || return 1
  children=$(awk -v p="$postmaster" '$4 == p {s += $14 + $15} END {print s + 0}' /proc/[0-9]*/stat 2>/dev/null)
  awk -v c="$children" '{print c + $14 + $15 + $16 + $17}' "/proc/$postmaster/stat"
}

# CPU ticks of the Kafka broker that scripts/services runs.
broker_ticks() { awk '{print $14 + $15}' "/proc/$(cat .local/kafka/kafka.pid)/stat"; }

# Runs one replica on topic $1 until it committed $2 records; sets applied_events, rate, rss_mb, cpu_us (the
# replica's CPU per applied event), and pg_cpu_us and broker_cpu_us: PostgreSQL's (all its
# processes: background ones and the harness's own queries included) and the broker's (its
# serving of the consumer; the records were loaded before) over the same span.
consume() {
  local topic=$1 records=$2; shift 2
  local log="$logs/consumer-$topic.log" pids=() i
  for ((i = 0; i < ${replicas:-1}; i++)); do  # replicas=2 consume …: a group of two
    env "$@" FRAUD_KAFKA_TOPICS="$topic" FRAUD_KAFKA_GROUP_ID="$topic" \
      "$consumer" run 2>>"$log" &
    pids+=($!)
  done
  local pid=${pids[0]} deadline=$((SECONDS + 600)) pg_before broker_before
  # Assignments of their own, so that set -e stops here if a server is not found.
  pg_before=$(postgres_ticks)
  broker_before=$(broker_ticks)
  # Polled once a second: a psql every 0.2 s took a tenth of the machine (perf). The rate is
  # measured from commit times in the database, not from this loop.
  until [ "$(sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = '$topic'")" -ge "$records" ]; do
    [ $SECONDS -lt $deadline ] || { echo "bench: $topic not consumed within 600 s" >&2; kill "${pids[@]}"; exit 1; }
    sleep 1
  done
  rss_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  local ticks pg_ticks broker; ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  pg_ticks=$(postgres_ticks)
  broker=$(broker_ticks)
  pg_ticks=$((pg_ticks - pg_before)) broker=$((broker - broker_before))
  metrics_port=$(grep -o '"metrics_port":"[0-9]*"' "$log" | tail -1 | grep -o '[0-9]*' || true)
  [ -z "${keep_consumer:-}" ] || return 0
  kill -TERM "${pids[@]}"; wait "${pids[@]}"
  local applied; applied=$(sql "SELECT count(*) FROM processed_events WHERE topic = '$topic'")
  applied_events=$applied
  rate=$(sql "SELECT round(count(*) / greatest(extract(epoch FROM max(processed_at) - min(processed_at)), 0.001))
              FROM processed_events WHERE topic = '$topic'")
  cpu_us=$(per_event "$ticks") pg_cpu_us=$(per_event "$pg_ticks") broker_cpu_us=$(per_event "$broker")
}

# What a span of work writes, per applied event: rows (heap inserts and updates, from the
# database's statistics), index entries (B-tree leaf inserts, counted in the WAL itself by
# pg_waldump) and WAL bytes. A physical replication slot keeps the span's WAL until it is read.
# What stays on disk is the database's growth over the span (tables, indexes, free space they
# hold; the outbox as the relay has not yet emptied it), which at 1,000 events/s makes the
# disk per day. writes_begin before the span; writes_end after it, with $1 the applied
# events, sets rows_per_event, index_entries_per_event, wal_bytes_per_event and
# disk_bytes_per_event.
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
writes_begin() {
  write_slot="fraud_bench_$$"
  sql "SELECT pg_drop_replication_slot('$write_slot') FROM pg_replication_slots WHERE slot_name = '$write_slot'" \
    >/dev/null
  sql "SELECT pg_create_physical_replication_slot('$write_slot', true)" >/dev/null
  wal_start=$(sql "SELECT pg_current_wal_insert_lsn()")
  rows_before=$(sql "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) FROM pg_stat_user_tables")
  disk_before=$(sql "SELECT pg_database_size(current_database())")
}
writes_end() {
  local applied=$1 wal_end rows entries deadline=$((SECONDS + 30))
  # The statistics of a backend reach the tables' counts when it ends: wait for the
  # replicas' sessions to end.
  until [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")" -eq 0 ]; do
    [ $SECONDS -lt $deadline ] || { echo "bench: sessions of the replicas still open after 30 s" >&2; break; }
    sleep 0.2
  done
  wal_end=$(sql "SELECT pg_current_wal_flush_lsn()")
  rows=$(sql "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0) - $rows_before FROM pg_stat_user_tables")
  entries=$("$pg_bin/pg_waldump" --stats=record -p .local/pg/data/pg_wal -s "$wal_start" -e "$wal_end" 2>/dev/null |
    awk '$1 == "Btree/INSERT_LEAF" || $1 == "Btree/INSERT_POST" {n += $2} END {print n + 0}')
  rows_per_event=$(awk -v r="$rows" -v n="$applied" 'BEGIN {printf "%.2f", r / n}')
  index_entries_per_event=$(awk -v r="$entries" -v n="$applied" 'BEGIN {printf "%.2f", r / n}')
  wal_bytes_per_event=$(sql "SELECT round(pg_wal_lsn_diff('$wal_end', '$wal_start') / $applied)")
  disk_bytes_per_event=$(sql "SELECT round((pg_database_size(current_database()) - $disk_before) / $applied::numeric)")
  sql "SELECT pg_drop_replication_slot('$write_slot')" >/dev/null
}
