# Shell functions bench/run and bench/compare share; sourced from the repository's root.
# consumer and bench_load name the binaries; bench/compare points them at other builds.
consumer=build/consumer/fraud-consumer
bench_load=build/bench/bench-load

sql() { psql "$FRAUD_POSTGRES_URL" -XAtq -c "$1"; }

# Migrates the empty database FRAUD_POSTGRES_URL names. Day partitions for the filler of
# bench/run's step 5 (from 2026-10-12) and the events (from 2026-11-01), as a deployment
# running `dedup prune` daily has them.
prepare_database() {
  "$consumer" migrate >/dev/null 2>&1
  "$consumer" dedup prune --from 2026-10-01 >/dev/null 2>&1
  sql "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1 || true
}

# Loads $2 events into topic $1 (10% redelivered); prints how many records it wrote.
load() { "$bench_load" --topic "$1" --events "$2" ${3:+--rate "$3"} ${4:+--duplicates "$4"} ${5:+--seed "$5"}; }

# Runs one replica on topic $1 until it committed $2 records; sets rate, rss_mb, cpu_us.
consume() {
  local topic=$1 records=$2; shift 2
  local log="$logs/consumer-$topic.log" pids=() i
  for ((i = 0; i < ${replicas:-1}; i++)); do  # replicas=2 consume …: a group of two
    env "$@" FRAUD_KAFKA_TOPICS="$topic" FRAUD_KAFKA_GROUP_ID="$topic" \
      "$consumer" run 2>>"$log" &
    pids+=($!)
  done
  local pid=${pids[0]} deadline=$((SECONDS + 600))
  # Polled once a second: a psql every 0.2 s took a tenth of the machine (perf). The rate is
  # measured from commit times in the database, not from this loop.
  until [ "$(sql "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE topic = '$topic'")" -ge "$records" ]; do
    [ $SECONDS -lt $deadline ] || { echo "bench: $topic not consumed within 600 s" >&2; kill "${pids[@]}"; exit 1; }
    sleep 1
  done
  rss_mb=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  local ticks; ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  metrics_port=$(grep -o '"metrics_port":"[0-9]*"' "$log" | tail -1 | grep -o '[0-9]*' || true)
  [ -z "${keep_consumer:-}" ] || return 0
  kill -TERM "${pids[@]}"; wait "${pids[@]}"
  local applied; applied=$(sql "SELECT count(*) FROM processed_events WHERE topic = '$topic'")
  rate=$(sql "SELECT round(count(*) / greatest(extract(epoch FROM max(processed_at) - min(processed_at)), 0.001))
              FROM processed_events WHERE topic = '$topic'")
  cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$applied" 'BEGIN {printf "%.1f", t / hz / n * 1e6}')
}
