#include "store/statements.h"

#include "events/time.h"
#include "ops/mechanism_switch.h"
#include "postgres/array_literal.h"
#include "postgres/connection.h"
#include "store/cases.h"
#include "store/dedup_gate.h"
#include "store/first_seen_pairs.h"
#include "store/list_entries.h"
#include "store/sql_text.h"

namespace fraud::store {
namespace {

using ops::mechanism_disabled;

// Takes the partition: the row lock orders this after any batch still committing under the
// previous epoch, so the offset returned is the last one committed.
constexpr const char* kClaim = R"sql(
INSERT INTO consumer_offsets (group_id, topic, partition, epoch, owner)
VALUES ($1, $2, $3, 1, $4)
ON CONFLICT (group_id, topic, partition)
DO UPDATE SET epoch = consumer_offsets.epoch + 1, owner = EXCLUDED.owner, updated_at = now()
RETURNING epoch, next_offset)sql";

// Fence and offsets in one statement: a partition's row matches no more once a newer
// assignment bumped its epoch (only the partitions that come back are this replica's), and
// the row stays locked so no claim can slip in before this transaction ends. It also takes
// the dedup gate shared (store/dedup_gate.h), so the slot the next statement reads stays
// current until this transaction ends.
const std::string kAdvance = std::string("WITH gate AS (") + kDedupGateShared + R"sql()
UPDATE consumer_offsets o SET next_offset = u.n, updated_at = now()
FROM gate, unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS u(t, p, e, n)
WHERE o.group_id = $1 AND o.topic = u.t AND o.partition = u.p AND o.epoch = u.e
RETURNING o.topic, o.partition)sql";

// The advance without its epoch check, for the mechanisms stage only (mechanism_switch.h): a
// zombie's batch then writes its stale offset, which the zombie test must catch.
std::string unfenced(std::string advance) {
  const std::string check = "AND o.epoch = u.e";
  return advance.replace(advance.find(check), check.size(), "AND u.e IS NOT NULL");
}

// The whole batch's dedup in one statement, by identity alone (migrations/0007): an id in the
// other generation is a duplicate; the rest go into the current one, whose unique index
// makes a second replica with the same id wait for the first and then find it. Rows are
// inserted in identity order, so two batches that share ids lock them in the same order and
// never deadlock. Only ids that come back are new. The generation is a scalar subquery, so
// the plan probes the other generation's primary key once per id; joined as a table, it let
// the planner sort the whole of processed_events for every batch.
constexpr const char* kDedup = R"sql(
INSERT INTO processed_events (event_source, event_id, slot, topic, partition, "offset", occurred_at, body_digest)
SELECT b.s, b.i, (SELECT current_slot FROM dedup_generation), b.tp, b.p, b.o,
       timestamptz 'epoch' + b.t * interval '1 microsecond', b.d
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::bigint[])
  WITH ORDINALITY AS b(s, i, tp, p, o, t, d, n)
WHERE NOT EXISTS (SELECT FROM processed_events p
                  WHERE p.event_source = b.s AND p.event_id = b.i
                    AND p.slot = 1 - (SELECT current_slot FROM dedup_generation))
ORDER BY b.s, b.i, b.n  -- an id twice in the transaction: its first record's row is kept
ON CONFLICT DO NOTHING
RETURNING event_source, event_id)sql";

// The batch's duplicates whose content differs from the applied copy: kept for an operator
// (the id decides what is applied; a silent choice would hide a producer's bug).
constexpr const char* kConflicts = R"sql(
INSERT INTO duplicate_conflicts (event_source, event_id, topic, partition, "offset", body,
                                 first_topic, first_partition, first_offset)
SELECT c.s, c.i, c.tp, c.p, c.o, c.b, p.topic, p.partition, p."offset"
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[], $7::text[])
  AS c(s, i, tp, p, o, d, b)
JOIN processed_events p ON p.event_source = c.s AND p.event_id = c.i
WHERE p.body_digest <> c.d
ON CONFLICT DO NOTHING
RETURNING topic, partition)sql";

// Alerts and their FraudAlertRaised outbox rows together: an alert is never recorded
// without being queued for publication, nor published without being recorded.
constexpr const char* kAlerts = R"sql(
WITH hit AS (
  -- One unnest of every column zips them row by row. (Two unnests side by side were a cross
  -- product: with a live and a shadow hit in one batch, alerts took each other's shadow flag,
  -- so a shadow rule's alert could be published and a live one kept back.)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                       $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[],
                       $14::boolean[], $15::int[], $16::text[])
    AS h(event_source, event_id, transaction_id, account_id, rule_id, score, decision, reason,
         amount_minor, currency, occurred_us, shadow, event_score, shadow_decision)
), alert AS (
  INSERT INTO fraud_alerts (event_source, event_id, transaction_id, account_id, rule_id,
                            rule_set_version, score, decision, reason, amount_minor, currency,
                            occurred_at, shadow, event_score, shadow_decision)
  SELECT event_source, event_id, transaction_id, account_id, rule_id, $12, score, decision,
         reason, amount_minor, currency, timestamptz 'epoch' + occurred_us * interval '1 microsecond',
         shadow, event_score, shadow_decision
  FROM hit
  ON CONFLICT DO NOTHING
  RETURNING *
)
INSERT INTO outbox (topic, record_key, headers, payload, event_type)
SELECT $13, convert_to(account_id, 'UTF8'),
       jsonb_build_array(jsonb_build_array('event_id', 'fraud-alert-' || alert_id),
                         jsonb_build_array('event_type', 'FraudAlertRaised')),
       convert_to(json_build_object(
         'event_id', 'fraud-alert-' || alert_id, 'event_type', 'FraudAlertRaised',
         'alert_id', alert_id, 'source_event_id', event_id, 'source_event_source', event_source,
         'transaction_id', transaction_id, 'account_id', account_id, 'rule_id', rule_id,
         'rule_set_version', rule_set_version, 'score', score, 'decision', decision,
         'reason', reason, 'amount_minor', amount_minor, 'currency', currency,
         'occurred_at', occurred_at, 'created_at', created_at)::text, 'UTF8'),
       'FraudAlertRaised'
FROM alert
WHERE NOT shadow)sql";

// A rejected record and its dead letter, kept whole for repair.
constexpr const char* kReject = R"sql(
WITH rejected AS (
  INSERT INTO rejected_events (topic, partition, "offset", record_key, headers, value, reason)
  VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
  ON CONFLICT DO NOTHING
  RETURNING *
)
INSERT INTO outbox (topic, record_key, headers, payload, event_type)
SELECT $8, record_key,
       headers || jsonb_build_array(jsonb_build_array('dlq.reason', reason),
                                    jsonb_build_array('dlq.topic', topic),
                                    jsonb_build_array('dlq.partition', partition::text),
                                    jsonb_build_array('dlq.offset', "offset"::text)),
       coalesce(value, ''::bytea), 'DeadLetter'
FROM rejected)sql";

// The batch's new events into the history that features and backtests read.
constexpr const char* kHistory = R"sql(
INSERT INTO transactions (event_source, event_id, occurred_at, account_id, customer_id,
                          card_fingerprint, device_id, device_ip, merchant_id,
                          counterparty_account, amount_minor, currency, transaction_id, body,
                          decision, score, shadow_decision, rule_set_version, applied_seq, lists_version,
                          lists_at, suppressed_rules, declined)
SELECT s, i, timestamptz 'epoch' + t * interval '1 microsecond', a, c, cf, d, ip, m, cp, am, cur, tx, b,
       dec, sc, sdec, $18, $19::bigint + n - 1, $20::bigint,
       timestamptz 'epoch' + $21::bigint * interval '1 microsecond', sup::jsonb,
       n = ANY($23::bigint[])  -- the few declined ones, by their place: most batches have none
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[],
            $15::text[], $16::int[], $17::text[], $22::text[]) WITH ORDINALITY
  AS u(s, i, t, a, c, cf, d, ip, m, cp, am, cur, tx, b, dec, sc, sdec, sup, n)
ON CONFLICT DO NOTHING)sql";

// Bumps the batch's keys' versions in key order (migrations/0009): the row locks order the
// batches that share a key; the versions tell which cached histories are stale.
// Only the fields some replica's rules registered (migrations/0012) are kept.
constexpr const char* kKeyVersions = R"sql(
INSERT INTO feature_key_versions (key_field, key, version)
SELECT f, k, 1 FROM unnest($1::text[], $2::text[]) AS u(f, k)
WHERE f IN (SELECT key_field FROM feature_key_fields WHERE maintained)
ORDER BY f, k
ON CONFLICT (key_field, key) DO UPDATE SET version = feature_key_versions.version + 1
RETURNING key_field, key, version)sql";

// Pairs seen together; only the ones that come back were never seen before. In key order,
// like every insert that can wait on another replica's row, so replicas never deadlock.
constexpr const char* kPairs = R"sql(
INSERT INTO first_seen_pairs (pair_kind, first_key, second_key, first_at, first_seq)
SELECT k, a, b, timestamptz 'epoch' + t * interval '1 microsecond', $5::bigint + n
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $6::bigint[]) AS u(k, a, b, t, n)
ORDER BY k, a, b, n  -- a pair twice in the batch: its first event's row is the one kept
ON CONFLICT DO NOTHING
RETURNING pair_kind, first_key, second_key)sql";

// The three reads every batch makes once its keys are locked, in one statement: one round trip
// rather than three (the inline door's latency is mostly its round trips, and each costs both
// processes a wake-up). Each module keeps its query, used here as a subquery; nextval is
// drawn only when $1 asks (a CASE evaluates one branch).
const std::string kBatchHeader = std::string("SELECT CASE WHEN $1 THEN nextval('applied_batches') END, ARRAY(") +
                                 FirstSeenPairs::kMaintainedKinds + "), l.version, l.at FROM (" +
                                 ListSnapshot::kVersionQuery + ") AS l(version, at)";

}  // namespace

std::unique_ptr<pqxx::connection> open_batch_connection(const std::string& url) {
  // A batch never idles inside its transaction; one that does belongs to a frozen
  // (SIGSTOPped, swapped-out) replica whose row lock would block the partition's new owner.
  // lock_timeout turns a wait for such a lock into a transient, retried error.
  // READ COMMITTED whatever the database's default: the dedup gate and the key versions
  // rely on each statement seeing what committed before it started (migrations/0007).
  auto c = postgres::connect(url, {{"idle_in_transaction_session_timeout", "10s"},
                                   {"lock_timeout", "5s"},
                                   {"default_transaction_isolation", "read committed"}});
  c->prepare("claim", kClaim);
  c->prepare("advance", mechanism_disabled("fence") ? unfenced(kAdvance) : kAdvance);
  c->prepare("dedup", kDedup);
  c->prepare("conflicts", kConflicts);
  c->prepare("alerts", kAlerts);
  c->prepare("reject", kReject);
  c->prepare("history", kHistory);
  c->prepare("pairs", kPairs);
  c->prepare("key_versions", kKeyVersions);
  c->prepare("open_cases", kOpenCases);
  c->prepare("batch_header", kBatchHeader);
  return c;
}

BatchHeader read_batch_header(pqxx::work& tx, bool draws_applied_seq) {
  auto row = tx.exec_prepared1("batch_header", draws_applied_seq);
  BatchHeader header;
  if (!row[0].is_null()) header.applied_batch = row[0].as<std::int64_t>();
  auto kinds = row[1].as_array();
  for (auto next = kinds.get_next(); next.first != pqxx::array_parser::done; next = kinds.get_next())
    if (next.first == pqxx::array_parser::string_value) header.pair_kinds.push_back(std::move(next.second));
  header.list_version = row[2].as<std::int64_t>();
  header.list_time = row[3].as<events::Timestamp>();
  return header;
}

/// Inserts the events of the `owned` batches into processed_events; returns the keys that
/// were new. `digests[b][k]`: the body digest of record k of batch b.
std::unordered_set<std::string> insert_new(pqxx::work& tx, std::span<const PartitionBatch> batches,
                                           const std::vector<std::size_t>& owned,
                                           const std::vector<std::vector<std::int64_t>>& digests) {
  postgres::ArrayLiteral sources, ids, topics, partitions, offsets, times, digest_column;
  for (auto b : owned)
    for (std::size_t k = 0; k < batches[b].records.size(); ++k) {
      const auto& r = batches[b].records[k];
      if (!r.event) continue;
      sources.add(r.event->source), ids.add(r.event->event_id);
      topics.add(batches[b].topic), partitions.add(std::int64_t{batches[b].partition});
      offsets.add(r.record.offset), times.add(r.event->occurred_at), digest_column.add(digests[b][k]);
    }
  if (sources.empty()) return {};
  auto rows = tx.exec_prepared("dedup", sources.str(), ids.str(), topics.str(), partitions.str(), offsets.str(),
                               times.str(), digest_column.str());
  std::unordered_set<std::string> fresh;
  fresh.reserve(rows.size());
  for (const auto& row : rows) fresh.insert(dedup_key(row[0].c_str(), row[1].c_str()));
  return fresh;
}

void insert_rejected(pqxx::work& tx, const PartitionBatch& batch, const DecodedRecord& r, const OutboxTopics& topics) {
  const auto& rec = r.record;
  auto key = rec.key ? pqxx::binarystring(*rec.key) : pqxx::binarystring("", 0);
  tx.exec_prepared("reject", batch.topic, batch.partition, rec.offset, key, headers_json(rec.headers),
                   pqxx::binarystring(rec.value), r.rejection, topics.dead_letters);
}

namespace {

void add_optional(postgres::ArrayLiteral& column, std::string_view value) {
  if (value.empty()) column.add_null();
  else column.add(value);
}

}  // namespace

/// The batch's new events and the verdict each got, into the history.
void insert_history(pqxx::work& tx, const std::vector<const events::Event*>& applied,
                    std::span<const std::string> bodies, const std::vector<rules::Verdict>& verdicts,
                    const std::vector<bool>& declined, const std::string& rule_set_version, std::int64_t applied_batch,
                    const rules::ListsAsOf& lists) {
  postgres::ArrayLiteral s, i, t, a, c, cf, d, ip, m, cp, am, cur, txn, body, decision, score, shadow_decision,
      suppressed, declined_places;
  for (std::size_t k = 0; k < applied.size(); ++k) {
    const auto* e = applied[k];
    s.add(e->source), i.add(e->event_id), t.add(e->occurred_at), a.add(e->account_id);
    add_optional(c, e->customer_id), add_optional(cf, e->card.fingerprint), add_optional(d, e->device.id);
    add_optional(ip, e->device.ip), add_optional(m, e->merchant.id), add_optional(cp, e->counterparty.account);
    am.add(e->amount.minor_units), cur.add(e->amount.currency), txn.add(e->transaction_id), body.add(bodies[k]);
    decision.add(rules::to_string(verdicts[k].decision)), score.add(std::int64_t{verdicts[k].score});
    shadow_decision.add(rules::to_string(verdicts[k].shadow_decision));
    // The rules a suppression silenced, live or shadow; NULL when none was.
    if (verdicts[k].suppressed.empty()) suppressed.add_null();
    else suppressed.add(json_string_array(verdicts[k].suppressed));
    if (declined[k]) declined_places.add(static_cast<std::int64_t>(k + 1));  // WITH ORDINALITY counts from 1
  }
  tx.exec_prepared("history", s.str(), i.str(), t.str(), a.str(), c.str(), cf.str(), d.str(), ip.str(), m.str(),
                   cp.str(), am.str(), cur.str(), txn.str(), body.str(), decision.str(), score.str(),
                   shadow_decision.str(), rule_set_version, applied_batch, lists.version, lists.at, suppressed.str(),
                   declined_places.str());
}

}  // namespace fraud::store
