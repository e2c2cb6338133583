#include "dedup/batch_store.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <span>
#include <unordered_set>

#include "dedup/connect.h"
#include "dedup/database_error.h"
#include "dedup/dedup_gate.h"
#include "ops/mechanism_switch.h"
#include "dedup/history.h"
#include "dedup/sql_text.h"
#include "events/encode.h"
#include "events/time.h"

namespace fraud::dedup {
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
// the dedup gate shared (dedup/dedup_gate.h), so the slot the next statement reads stays
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
                          decision, score, shadow_decision, rule_set_version, applied_seq)
SELECT s, i, timestamptz 'epoch' + t * interval '1 microsecond', a, c, cf, d, ip, m, cp, am, cur, tx, b,
       dec, sc, sdec, $18, $19::bigint + n - 1
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[], $13::text[], $14::text[],
            $15::text[], $16::int[], $17::text[]) WITH ORDINALITY
  AS u(s, i, t, a, c, cf, d, ip, m, cp, am, cur, tx, b, dec, sc, sdec, n)
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

// Registers key fields (migrations/0012), with the dedup gate held exclusively so that no
// batch is in flight: a field never kept before is complete only if no batch has drawn an
// applied_seq since its versions last were.
constexpr const char* kRegisterKeyFields = R"sql(
UPDATE feature_key_fields
SET maintained = true,
    complete = versions_through IS NOT NULL
               AND versions_through = coalesce(pg_sequence_last_value('applied_batches'), 0)
WHERE key_field = ANY($1::text[]) AND NOT maintained)sql";

// Pairs seen together; only the ones that come back were never seen before. In key order,
// like every insert that can wait on another replica's row, so replicas never deadlock.
constexpr const char* kPairs = R"sql(
INSERT INTO first_seen_pairs (pair_kind, first_key, second_key, first_at, first_seq)
SELECT k, a, b, timestamptz 'epoch' + t * interval '1 microsecond', $5::bigint + n
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $6::bigint[]) AS u(k, a, b, t, n)
ORDER BY k, a, b, n  -- a pair twice in the batch: its first event's row is the one kept
ON CONFLICT DO NOTHING
RETURNING pair_kind, first_key, second_key)sql";

// Per key, its events at or before a time, newest first: `limit` of them after skipping `offset`.
std::string older_history_query(rules::KeyField field, int limit, int offset) {
  std::string c = history_column(field);
  return "SELECT latest.event_source, latest.body FROM unnest($1::text[]) AS k(key) "
         "CROSS JOIN LATERAL (SELECT event_source, body FROM transactions WHERE " + c + " = k.key AND "
         "occurred_at <= $2::timestamptz ORDER BY occurred_at DESC, event_id DESC LIMIT " + std::to_string(limit) +
         " OFFSET " + std::to_string(offset) + ") latest";
}

// A key's events since a time, and its latest `latest_before` ones before (time since last,
// speed; more than one when their `where` may skip the latest). The column comes from the
// fixed list above, never from input. The time is a timestamptz parameter so that
// PostgreSQL prunes day partitions while planning (an expression on it would be pruned only
// after every partition was locked); the latest events before it are a LIMIT per key, which
// an ordered scan over the newest partitions answers early.
std::string history_query(rules::KeyField field, int latest_before) {
  std::string c = history_column(field);
  std::string since = "SELECT event_source, body FROM transactions WHERE " + c + " = ANY($1::text[]) AND occurred_at > "
                      "$2::timestamptz";
  if (!latest_before) return since;
  return since + " UNION ALL " + older_history_query(field, latest_before, 0);
}

/// The pairs recorded for every event, whatever the rules, so that a first_seen feature
/// added later starts from everything already seen; plus any a rule file declares.
std::vector<std::pair<rules::KeyField, rules::KeyField>> pair_kinds(const rules::RuleSet& rules) {
  using K = rules::KeyField;
  std::vector<std::pair<K, K>> kinds = {{K::account_id, K::counterparty_account}, {K::account_id, K::device_id},
                                        {K::account_id, K::merchant_id}};
  for (const auto& f : rules.features())
    if (f.aggregate == rules::Aggregate::first_seen &&
        std::find(kinds.begin(), kinds.end(), std::make_pair(f.key, *f.paired_with)) == kinds.end())
      kinds.emplace_back(f.key, *f.paired_with);
  return kinds;
}

/// One string for a pair of strings: the first one's length leads, so no two pairs share a
/// key whatever bytes they hold (a separator character could be forged inside either).
std::string dedup_key(std::string_view source, std::string_view id) {
  std::string key = std::to_string(source.size());
  key += ':';
  key += source;
  key += id;
  return key;
}

/// The alerts of one batch, one array per column.
struct AlertColumns {
  ArrayLiteral source, id, transaction, account, rule, score, decision, reason, amount, currency, occurred, shadow,
      event_score, shadow_decision;
  std::size_t count = 0;

  void add(const events::Event& e, const rules::RuleHit& hit, const rules::Verdict& verdict) {
    source.add(e.source), id.add(e.event_id), transaction.add(e.transaction_id), account.add(e.account_id);
    rule.add(hit.rule_id), score.add(std::int64_t{hit.score}), decision.add(rules::to_string(verdict.decision));
    reason.add(hit.explanation), amount.add(e.amount.minor_units), currency.add(e.amount.currency);
    occurred.add(e.occurred_at), shadow.add(hit.shadow ? "true" : "false"), event_score.add(std::int64_t{verdict.score});
    shadow_decision.add(rules::to_string(verdict.shadow_decision));
    ++count;
  }
};

/// The duplicates of one transaction, one array per column, to compare with the applied copies.
struct DuplicateColumns {
  ArrayLiteral source, id, topic, partition, offset, digest, body;
  std::size_t count = 0;

  void add(const PartitionBatch& batch, const DecodedRecord& r, std::int64_t body_digest) {
    source.add(r.event->source), id.add(r.event->event_id), topic.add(batch.topic);
    partition.add(std::int64_t{batch.partition}), offset.add(r.record.offset);
    digest.add(body_digest), body.add(events::to_json(*r.event));
    ++count;
  }
};

/// Inserts the events of the `owned` batches into processed_events; returns the keys that
/// were new. `digests[b][k]`: the body digest of record k of batch b.
std::unordered_set<std::string> insert_new(pqxx::work& tx, std::span<const PartitionBatch> batches,
                                           const std::vector<std::size_t>& owned,
                                           const std::vector<std::vector<std::int64_t>>& digests) {
  ArrayLiteral sources, ids, topics, partitions, offsets, times, digest_column;
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

void add_optional(ArrayLiteral& column, std::string_view value) {
  if (value.empty()) column.add_null();
  else column.add(value);
}

/// The batch's new events and the verdict each got, into the history.
void insert_history(pqxx::work& tx, const std::vector<const events::Event*>& applied,
                    const std::vector<rules::Verdict>& verdicts, const std::string& rule_set_version,
                    std::int64_t applied_batch) {
  ArrayLiteral s, i, t, a, c, cf, d, ip, m, cp, am, cur, txn, body, decision, score, shadow_decision;
  for (std::size_t k = 0; k < applied.size(); ++k) {
    const auto* e = applied[k];
    s.add(e->source), i.add(e->event_id), t.add(e->occurred_at), a.add(e->account_id);
    add_optional(c, e->customer_id), add_optional(cf, e->card.fingerprint), add_optional(d, e->device.id);
    add_optional(ip, e->device.ip), add_optional(m, e->merchant.id), add_optional(cp, e->counterparty.account);
    am.add(e->amount.minor_units), cur.add(e->amount.currency), txn.add(e->transaction_id), body.add(events::to_json(*e));
    decision.add(rules::to_string(verdicts[k].decision)), score.add(std::int64_t{verdicts[k].score});
    shadow_decision.add(rules::to_string(verdicts[k].shadow_decision));
  }
  tx.exec_prepared("history", s.str(), i.str(), t.str(), a.str(), c.str(), cf.str(), d.str(), ip.str(), m.str(),
                   cp.str(), am.str(), cur.str(), txn.str(), body.str(), decision.str(), score.str(),
                   shadow_decision.str(), rule_set_version, applied_batch);
}

/// Records the pairs of the batch's new events; returns, per event, which of its first_seen
/// features' pairs are new (the first claim in the batch wins). Pairs in `known` exist
/// already and are not sent; every pair sent is added to `sent`, to be known once the
/// transaction commits. A hash collision would make one new pair look known: with 64 bits
/// and at most a million known pairs, about one chance in 10^13 per pair.
std::vector<std::vector<bool>> claim_pairs(pqxx::work& tx, const rules::FeatureEngine& engine,
                                           const std::vector<const events::Event*>& applied,
                                           std::int64_t applied_batch, const std::unordered_set<std::uint64_t>& known,
                                           std::vector<std::uint64_t>& sent) {
  auto kinds = pair_kinds(engine.rules());
  ArrayLiteral kind, first, second, at, place;
  for (std::size_t k = 0; k < applied.size(); ++k)
    for (const auto& [ka, kb] : kinds) {
      const auto* e = applied[k];
      auto a = rules::key_of(*e, ka), b = rules::key_of(*e, kb);
      if (a.empty() || b.empty()) continue;
      auto name = pair_kind_name(ka, kb);
      auto hash = std::hash<std::string>{}(dedup_key(name, dedup_key(a, b)));
      if (known.count(hash)) continue;
      sent.push_back(hash);
      kind.add(name), first.add(a), second.add(b), at.add(e->occurred_at), place.add(static_cast<std::int64_t>(k));
    }
  std::unordered_set<std::string> fresh;
  if (!sent.empty())
    for (const auto& row : tx.exec_prepared("pairs", kind.str(), first.str(), second.str(), at.str(), applied_batch,
                                            place.str()))
      fresh.insert(dedup_key(row[0].c_str(), dedup_key(row[1].c_str(), row[2].c_str())));
  std::vector<std::vector<bool>> flags;
  const auto& specs = engine.rules().features();
  for (const auto* e : applied) {
    auto& event_flags = flags.emplace_back();
    for (const auto& [index, a, b] : engine.pairs_of(*e)) {
      auto name = pair_kind_name(specs[index].key, *specs[index].paired_with);
      event_flags.push_back(fresh.erase(dedup_key(name, dedup_key(a, b))) > 0);
    }
  }
  return flags;
}

}  // namespace

void BatchStore::remember_pairs(const std::vector<std::uint64_t>& committed) {
  constexpr std::size_t kMaxKnownPairs = 1'000'000;  // about 40 MB; past it, start again
  if (known_pairs_.size() + committed.size() > kMaxKnownPairs) known_pairs_.clear();
  known_pairs_.insert(committed.begin(), committed.end());
}

BatchStore::BatchStore(std::string postgres_url, std::string group_id, std::string owner, OutboxTopics topics)
    : url_(std::move(postgres_url)), group_id_(std::move(group_id)), owner_(std::move(owner)),
      topics_(std::move(topics)) {}

BatchStore::~BatchStore() = default;

pqxx::connection& BatchStore::connection() {
  if (connection_ && connection_->is_open()) return *connection_;
  connection_.reset();
  try {
    auto c = std::make_unique<pqxx::connection>(with_connect_timeout(url_));
    // A batch never idles inside its transaction; one that does belongs to a frozen
    // (SIGSTOPped, swapped-out) replica whose row lock would block the partition's new owner.
    // lock_timeout turns a wait for such a lock into a transient, retried error.
    // READ COMMITTED whatever the database's default: the dedup gate and the key versions
    // rely on each statement seeing what committed before it started (migrations/0007).
    pqxx::nontransaction(*c).exec0(
        "SET idle_in_transaction_session_timeout = '10s'; SET lock_timeout = '5s'; "
        "SET default_transaction_isolation = 'read committed'");
    c->prepare("claim", kClaim);
    c->prepare("advance", mechanism_disabled("fence") ? unfenced(kAdvance) : kAdvance);
    c->prepare("dedup", kDedup);
    c->prepare("conflicts", kConflicts);
    c->prepare("alerts", kAlerts);
    c->prepare("reject", kReject);
    c->prepare("history", kHistory);
    c->prepare("pairs", kPairs);
    c->prepare("key_versions", kKeyVersions);
    connection_ = std::move(c);
    if (connected_before_ && on_reconnect_) on_reconnect_();
    connected_before_ = true;
  } catch (...) {
    rethrow_as_database_error();
  }
  return *connection_;
}

std::optional<int> BatchStore::release_stalled_owner(const std::string& topic, std::int32_t partition,
                                                     std::chrono::seconds stalled_for) {
  try {
    pqxx::nontransaction tx(connection());
    auto row = tx.exec_params1("SELECT fraud_release_stalled_owner($1, $2, $3, make_interval(secs => $4))", group_id_,
                               topic, partition, static_cast<double>(stalled_for.count()));
    if (row[0].is_null()) return std::nullopt;
    return row[0].as<int>();
  } catch (...) {
    bool lost = connection_ && !connection_->is_open();
    if (lost) connection_.reset();
    rethrow_as_database_error(lost);
  }
}

Claim BatchStore::claim(const std::string& topic, std::int32_t partition) {
  try {
    pqxx::work tx(connection());
    tx.exec0("SET LOCAL statement_timeout = '10s'");  // a claim runs in the rebalance callback
    auto row = tx.exec_prepared1("claim", group_id_, topic, partition, owner_);
    tx.commit();
    Claim claim{row[0].as<std::int64_t>(), std::nullopt};
    if (!row[1].is_null()) claim.next_offset = row[1].as<std::int64_t>();
    return claim;
  } catch (...) {
    bool lost = connection_ && !connection_->is_open();
    if (lost) connection_.reset();
    rethrow_as_database_error(lost);
  }
}

BatchResult BatchStore::apply(const PartitionBatch& batch, rules::FeatureEngine& features) {
  return apply(std::span<const PartitionBatch>(&batch, 1), features).front();
}

std::vector<BatchResult> BatchStore::apply(std::span<const PartitionBatch> batches, rules::FeatureEngine& features) {
  std::vector<BatchResult> results(batches.size());
  try {
    register_key_fields(features);
    pqxx::work tx(connection());
    auto owned = advance(tx, batches, results);
    if (owned.empty()) return results;  // nothing to write, or every batch fenced: roll back
    auto applied = separate_new_events(tx, batches, owned, results);
    std::vector<const events::Event*> events;
    events.reserve(applied.size());
    for (const auto& a : applied) events.push_back(a.event);
    if (!mechanism_disabled("key_versions")) synchronise_keys(tx, features, events);
    load_history(tx, features, events);
    // Drawn after the key locks: per key, batches draw in commit order (migrations/0011). The
    // transaction's first applied_seq; its events follow in order.
    auto applied_batch =
        events.empty() ? 0 : tx.exec1("SELECT nextval('applied_batches')")[0].as<std::int64_t>() * kAppliedSeqPerBatch;
    std::vector<std::uint64_t> sent_pairs;
    auto pair_flags = claim_pairs(tx, features, events, applied_batch, known_pairs_, sent_pairs);
    AlertColumns alerts;
    const auto& rules = features.rules();
    std::vector<rules::Verdict> verdicts;
    verdicts.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& event = *events[i];
      auto& result = results[applied[i].batch];
      auto started = std::chrono::steady_clock::now();
      auto values = features.observe(event, &pair_flags[i]);
      const auto& verdict = verdicts.emplace_back(rules.evaluate(event, values));
      result.rule_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      for (const auto& hit : verdict.hits) {
        alerts.add(event, hit, verdict);
        result.alert_labels.push_back({hit.rule_id, rules::to_string(verdict.decision), hit.shadow});
        ++result.alerts;
      }
    }
    if (!events.empty()) insert_history(tx, events, verdicts, rules.version(), applied_batch);
    if (alerts.count > 0) {
      tx.exec_prepared("alerts", alerts.source.str(), alerts.id.str(), alerts.transaction.str(), alerts.account.str(),
                       alerts.rule.str(), alerts.score.str(), alerts.decision.str(), alerts.reason.str(),
                       alerts.amount.str(), alerts.currency.str(), alerts.occurred.str(), rules.version(),
                       topics_.alerts, alerts.shadow.str(), alerts.event_score.str(), alerts.shadow_decision.str());
    }
    tx.commit();
    remember_pairs(sent_pairs);
    return results;
  } catch (...) {
    bool lost = connection_ && !connection_->is_open();
    if (lost) connection_.reset();
    rethrow_as_database_error(lost);
  }
}

// Makes sure every batch from now on, on any replica, keeps the versions of the key fields
// `features` group by: registered ones are known from before; the others are registered
// with the dedup gate held exclusively, which waits for the batches in flight to commit.
void BatchStore::register_key_fields(const rules::FeatureEngine& features) {
  ArrayLiteral missing;
  std::size_t wanted = 0;
  for (auto field : features.key_fields())
    if (!versions_complete_.count(field)) missing.add(rules::to_string(field)), ++wanted;
  if (wanted == 0) return;
  // Learned into a copy, kept only once the transaction committed: a registration rolled
  // back (a lost connection at commit) must be tried again, not remembered as done.
  std::map<rules::KeyField, bool> learned;
  auto learn = [&](pqxx::work& tx) {  // the maintained ones among them; how many
    learned.clear();
    for (const auto& row : tx.exec_params("SELECT key_field, complete FROM feature_key_fields "
                                          "WHERE key_field = ANY($1::text[]) AND maintained",
                                          missing.str()))
      for (const auto& key : rules::kKeyFieldSpecs)
        if (row[0].c_str() == key.name) learned[key.field] = row[1].as<bool>();
    return learned.size();
  };
  pqxx::work tx(connection());
  if (learn(tx) < wanted) {  // not registered before, by this replica or another
    // Waits for the batches in flight (and holds new ones back) for at most lock_timeout.
    tx.exec(kDedupGateExclusive);
    tx.exec_params0("INSERT INTO feature_key_fields (key_field) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                    missing.str());
    tx.exec_params0(kRegisterKeyFields, missing.str());
    learn(tx);
  }
  tx.commit();
  versions_complete_.insert(learned.begin(), learned.end());
}

// Fences and advances every batch's partition in one statement; returns the indices of the
// batches whose partitions this replica still owns, and marks the others fenced.
std::vector<std::size_t> BatchStore::advance(pqxx::work& tx, std::span<const PartitionBatch> batches,
                                             std::vector<BatchResult>& results) {
  ArrayLiteral topics, partitions, epochs, next_offsets;
  for (const auto& batch : batches) {
    if (batch.records.empty()) continue;
    topics.add(batch.topic), partitions.add(std::int64_t{batch.partition});
    epochs.add(batch.epoch), next_offsets.add(batch.next_offset());
  }
  if (topics.empty()) return {};
  std::set<std::pair<std::string, std::int32_t>> advanced;
  for (const auto& row : tx.exec_prepared("advance", group_id_, topics.str(), partitions.str(), epochs.str(),
                                          next_offsets.str()))
    advanced.emplace(row[0].c_str(), row[1].as<std::int32_t>());
  std::vector<std::size_t> owned;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (batches[b].records.empty()) continue;
    // Another assignment owns it: nothing of this batch is written.
    if (advanced.count({batches[b].topic, batches[b].partition}) || mechanism_disabled("fence")) owned.push_back(b);
    else results[b].fenced = true;
  }
  return owned;
}

// Dedups the owned batches and records their rejected records; returns their new events in
// the order given (batch by batch, offset order within one). The first occurrence of a new
// id is applied; any later one in the transaction is a duplicate.
std::vector<BatchStore::NewEvent> BatchStore::separate_new_events(pqxx::work& tx,
                                                                  std::span<const PartitionBatch> batches,
                                                                  const std::vector<std::size_t>& owned,
                                                                  std::vector<BatchResult>& results) {
  std::vector<std::vector<std::int64_t>> digests(batches.size());
  for (auto b : owned) {
    digests[b].resize(batches[b].records.size());
    for (std::size_t k = 0; k < batches[b].records.size(); ++k)
      if (const auto& r = batches[b].records[k]; r.event) digests[b][k] = events::body_digest(events::to_json(*r.event));
  }
  auto fresh = insert_new(tx, batches, owned, digests);
  std::vector<NewEvent> applied;
  DuplicateColumns duplicates;
  for (auto b : owned) {
    auto& result = results[b];
    for (std::size_t k = 0; k < batches[b].records.size(); ++k) {
      const auto& r = batches[b].records[k];
      if (!r.event) {
        insert_rejected(tx, batches[b], r, topics_);
        ++result.rejected;
      } else if (fresh.erase(dedup_key(r.event->source, r.event->event_id)) == 0 && !mechanism_disabled("dedup")) {
        ++result.duplicates;
        duplicates.add(batches[b], r, digests[b][k]);
      } else {
        ++result.processed;
        result.applied_origins.push_back(r.event->recorded_at.value_or(r.record.timestamp_ms * 1000));
        applied.push_back({&*r.event, b});
      }
    }
  }
  if (duplicates.count > 0) {
    auto rows = tx.exec_prepared("conflicts", duplicates.source.str(), duplicates.id.str(), duplicates.topic.str(),
                                 duplicates.partition.str(), duplicates.offset.str(), duplicates.digest.str(),
                                 duplicates.body.str());
    for (const auto& row : rows)
      for (auto b : owned)
        if (batches[b].topic == row[0].c_str() && batches[b].partition == row[1].as<std::int32_t>())
          ++results[b].duplicate_conflicts;
  }
  return applied;
}

// Takes the batch's keys in the shared order and drops the cached histories that other
// replicas extended since this one last did; load_history() then reads those again.
void BatchStore::synchronise_keys(pqxx::work& tx, rules::FeatureEngine& features,
                                  const std::vector<const events::Event*>& applied) {
  // Every key field, not only those of this replica's rules: the statement keeps the ones
  // any replica registered (a rollout or a reload can run other rule files side by side).
  std::set<std::pair<rules::KeyField, std::string>> keys;
  for (const auto* e : applied)
    for (const auto& spec : rules::kKeyFieldSpecs)
      if (auto key = spec.read(*e); !key.empty()) keys.emplace(spec.field, std::string(key));
  if (keys.empty()) return;
  ArrayLiteral fields, values;
  std::map<std::string, rules::KeyField, std::less<>> field_named;
  for (const auto& [field, key] : keys) {
    fields.add(rules::to_string(field)), values.add(key);
    field_named.emplace(rules::to_string(field), field);
  }
  for (const auto& row : tx.exec_prepared("key_versions", fields.str(), values.str())) {
    auto field = field_named.at(row[0].c_str());
    auto complete = versions_complete_.find(field);
    features.synchronise(field, row[1].c_str(), row[2].as<std::int64_t>(),
                         complete != versions_complete_.end() && complete->second);
  }
}

// Gives the engine the history of every key it does not hold: one query per key field for
// the whole batch.
void BatchStore::load_history(pqxx::work& tx, rules::FeatureEngine& features,
                              const std::vector<const events::Event*>& applied) {
  struct Wanted {
    ArrayLiteral keys;
    events::Timestamp since;
    int latest_before = 0;
  };
  std::map<rules::KeyField, Wanted> wanted;
  for (const auto* e : applied)
    for (const auto& request : features.requests_for(*e)) {
      auto [it, inserted] = wanted.try_emplace(request.field, Wanted{{}, request.since});
      it->second.keys.add(request.key);
      it->second.since = std::min(it->second.since, request.since);
      it->second.latest_before = std::max(it->second.latest_before, request.latest_before);
    }
  for (const auto& [field, w] : wanted) {
    auto since = events::format_rfc3339(w.since);
    std::map<std::string, int> older;  // per key: the events of the last query at or before `since`
    auto remember = [&](const pqxx::result& rows) {
      older.clear();
      for (const auto& row : rows) {
        events::Record stored;
        stored.value = row[1].c_str();
        auto decoded = stored.decode(history_decoder_);
        if (!decoded.event) continue;  // written by this service; cannot happen short of tampering
        decoded.event->source = row[0].c_str();
        if (decoded.event->occurred_at <= w.since) ++older[std::string(rules::key_of(*decoded.event, field))];
        features.remember(*decoded.event, field);
      }
    };
    remember(tx.exec_params(history_query(field, w.latest_before), w.keys.str(), since));
    // A time_since_last or speed_kmh reads the key's latest event that satisfies its `where`
    // (and has a location, for speed), however old, as one process holding the key all along
    // would. When the events read hold none, read on, twice as deep each time, while the key
    // has more, up to rules::kMaxLatestDepth events. The pages are consistent: this batch
    // holds the key's version lock, so no other replica commits events of the key meanwhile.
    for (int offset = 0, page = w.latest_before; page > 0;) {  // `page`: as many as the last query asked for
      ArrayLiteral deeper;
      std::size_t count = 0;
      for (const auto& [key, n] : older) {
        if (n < page || !features.lacks_latest(field, key)) continue;  // found, or no more
        deeper.add(key);
        ++count;
      }
      if (count == 0 || offset + page >= rules::kMaxLatestDepth) break;
      offset += page;
      page = offset;
      remember(tx.exec_params(older_history_query(field, page, offset), deeper.str(), since));
    }
  }
}

}  // namespace fraud::dedup
