#include "dedup/batch_store.h"

#include <pqxx/pqxx>

#include <chrono>
#include <unordered_set>

#include "dedup/database_error.h"
#include "dedup/sql_text.h"

namespace fraud::dedup {
namespace {

// Takes the partition: the row lock orders this after any batch still committing under the
// previous epoch, so the offset returned is the last one committed.
constexpr const char* kClaim = R"sql(
INSERT INTO consumer_offsets (group_id, topic, partition, epoch, owner)
VALUES ($1, $2, $3, 1, $4)
ON CONFLICT (group_id, topic, partition)
DO UPDATE SET epoch = consumer_offsets.epoch + 1, owner = EXCLUDED.owner, updated_at = now()
RETURNING epoch, next_offset)sql";

// Fence and offset in one statement: it matches no row once a newer assignment bumped the
// epoch, and it locks the row so no claim can slip in before this transaction ends.
constexpr const char* kAdvance = R"sql(
UPDATE consumer_offsets SET next_offset = $5, updated_at = now()
WHERE group_id = $1 AND topic = $2 AND partition = $3 AND epoch = $4)sql";

// The whole batch's dedup in one statement; only ids that come back are new.
constexpr const char* kDedup = R"sql(
INSERT INTO processed_events (event_source, event_id, topic, partition, "offset", occurred_at)
SELECT s, i, $3, $4, o, timestamptz 'epoch' + t * interval '1 microsecond'
FROM unnest($1::text[], $2::text[], $5::bigint[], $6::bigint[]) AS u(s, i, o, t)
ON CONFLICT DO NOTHING
RETURNING event_source, event_id)sql";

// Alerts and their FraudAlertRaised outbox rows together: an alert is never recorded
// without being queued for publication, nor published without being recorded.
constexpr const char* kAlerts = R"sql(
WITH hit AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
                       $7::text[], $8::text[], $9::bigint[], $10::text[], $11::bigint[])
    AS h(event_source, event_id, transaction_id, account_id, rule_id, score, decision, reason,
         amount_minor, currency, occurred_us),
       unnest($14::boolean[], $15::int[]) AS v(shadow, event_score)
), alert AS (
  INSERT INTO fraud_alerts (event_source, event_id, transaction_id, account_id, rule_id,
                            rule_set_version, score, decision, reason, amount_minor, currency,
                            occurred_at, shadow, event_score)
  SELECT event_source, event_id, transaction_id, account_id, rule_id, $12, score, decision,
         reason, amount_minor, currency, timestamptz 'epoch' + occurred_us * interval '1 microsecond',
         shadow, event_score
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

std::string dedup_key(std::string_view source, std::string_view id) {
  std::string key(source);
  key += '\x1f';
  key += id;
  return key;
}

/// The alerts of one batch, one array per column.
struct AlertColumns {
  ArrayLiteral source, id, transaction, account, rule, score, decision, reason, amount, currency, occurred, shadow,
      event_score;
  std::size_t count = 0;

  void add(const events::Event& e, const rules::RuleHit& hit, const rules::Verdict& verdict) {
    source.add(e.source), id.add(e.event_id), transaction.add(e.transaction_id), account.add(e.account_id);
    rule.add(hit.rule_id), score.add(std::int64_t{hit.score}), decision.add(rules::to_string(verdict.decision));
    reason.add(hit.explanation), amount.add(e.amount.minor_units), currency.add(e.amount.currency);
    occurred.add(e.occurred_at), shadow.add(hit.shadow ? "true" : "false"), event_score.add(std::int64_t{verdict.score});
    ++count;
  }
};

/// Inserts the batch's events into processed_events; returns the keys that were new.
std::unordered_set<std::string> insert_new(pqxx::work& tx, const PartitionBatch& batch) {
  ArrayLiteral sources, ids, offsets, times;
  for (const auto& r : batch.records) {
    if (!r.event) continue;
    sources.add(r.event->source), ids.add(r.event->event_id);
    offsets.add(r.record.offset), times.add(r.event->occurred_at);
  }
  auto rows = tx.exec_prepared("dedup", sources.str(), ids.str(), batch.topic, batch.partition, offsets.str(),
                               times.str());
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

}  // namespace

BatchStore::BatchStore(std::string postgres_url, std::string group_id, std::string owner, OutboxTopics topics)
    : url_(std::move(postgres_url)), group_id_(std::move(group_id)), owner_(std::move(owner)),
      topics_(std::move(topics)) {}

BatchStore::~BatchStore() = default;

pqxx::connection& BatchStore::connection() {
  if (connection_ && connection_->is_open()) return *connection_;
  connection_.reset();
  try {
    auto c = std::make_unique<pqxx::connection>(url_);
    // A batch never idles inside its transaction; one that does belongs to a frozen
    // (SIGSTOPped, swapped-out) replica whose row lock would block the partition's new owner.
    // lock_timeout turns a wait for such a lock into a transient, retried error.
    pqxx::nontransaction(*c).exec0(
        "SET idle_in_transaction_session_timeout = '10s'; SET lock_timeout = '5s'");
    c->prepare("claim", kClaim);
    c->prepare("advance", kAdvance);
    c->prepare("dedup", kDedup);
    c->prepare("alerts", kAlerts);
    c->prepare("reject", kReject);
    connection_ = std::move(c);
    if (connected_before_ && on_reconnect_) on_reconnect_();
    connected_before_ = true;
  } catch (...) {
    rethrow_as_database_error();
  }
  return *connection_;
}

Claim BatchStore::claim(const std::string& topic, std::int32_t partition) {
  try {
    pqxx::work tx(connection());
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

BatchResult BatchStore::apply(const PartitionBatch& batch, const rules::RuleSet& rules) {
  BatchResult result;
  if (batch.records.empty()) return result;
  try {
    pqxx::work tx(connection());
    auto advanced = tx.exec_prepared("advance", group_id_, batch.topic, batch.partition, batch.epoch,
                                     batch.next_offset());
    if (advanced.affected_rows() == 0) {  // another assignment owns it; the transaction rolls back
      result.fenced = true;
      return result;
    }

    auto fresh = insert_new(tx, batch);
    AlertColumns alerts;
    for (const auto& r : batch.records) {
      if (!r.event) {
        insert_rejected(tx, batch, r, topics_);
        ++result.rejected;
        continue;
      }
      // The first occurrence of a new id is processed; any later one in this batch is a duplicate.
      if (fresh.erase(dedup_key(r.event->source, r.event->event_id)) == 0) {
        ++result.duplicates;
        continue;
      }
      ++result.processed;
      result.applied_origins.push_back(r.event->recorded_at.value_or(r.record.timestamp_ms * 1000));
      auto started = std::chrono::steady_clock::now();
      auto verdict = rules.evaluate(*r.event, {});
      result.rule_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      for (const auto& hit : verdict.hits) {
        alerts.add(*r.event, hit, verdict);
        result.alert_labels.push_back({hit.rule_id, rules::to_string(verdict.decision), hit.shadow});
      }
    }
    if (alerts.count > 0) {
      tx.exec_prepared("alerts", alerts.source.str(), alerts.id.str(), alerts.transaction.str(), alerts.account.str(),
                       alerts.rule.str(), alerts.score.str(), alerts.decision.str(), alerts.reason.str(),
                       alerts.amount.str(), alerts.currency.str(), alerts.occurred.str(), rules.version(),
                       topics_.alerts, alerts.shadow.str(), alerts.event_score.str());
    }
    result.alerts = alerts.count;
    tx.commit();
    return result;
  } catch (...) {
    bool lost = connection_ && !connection_->is_open();
    if (lost) connection_.reset();
    rethrow_as_database_error(lost);
  }
}

}  // namespace fraud::dedup
