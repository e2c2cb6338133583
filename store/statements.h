#pragma once
// The statements of a batch's transaction (store/batch_store.h) and the columns each takes,
// so that BatchStore::begin() and OpenBatch read as the order of their steps. Internal to the store module.

#include <pqxx/pqxx>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "events/encode.h"
#include "postgres/array_literal.h"
#include "store/batch_store.h"

namespace fraud::store {

/// A connection set up for batches: its session settings, and every statement of a batch
/// prepared (with the fence switched off in the mechanisms stage's build only).
std::unique_ptr<pqxx::connection> open_batch_connection(const std::string& url);

/// What every batch reads once its keys are locked, whatever it holds.
struct BatchHeader {
  std::optional<std::int64_t> applied_batch;  ///< nextval('applied_batches'), when the batch has new events
  std::vector<std::string> pair_kinds;        ///< FirstSeenPairs::kMaintainedKinds
  std::int64_t list_version = 0;              ///< ListSnapshot::kVersionQuery
  events::Timestamp list_time = 0;
};

/// Reads the header in one round trip; draws an applied_seq only when `draws_applied_seq`.
BatchHeader read_batch_header(pqxx::work& tx, bool draws_applied_seq);

/// The alerts of one batch, one array per column.
struct AlertColumns {
  postgres::ArrayLiteral source, id, transaction, account, rule, score, decision, reason, amount, currency, occurred,
      shadow, event_score, shadow_decision;
  std::size_t count = 0;

  void add(const events::Event& e, const rules::RuleHit& hit, const rules::Verdict& verdict) {
    source.add(e.source), id.add(e.event_id), transaction.add(e.transaction_id), account.add(e.account_id);
    rule.add(hit.rule_id), score.add(std::int64_t{hit.score}), decision.add(rules::to_string(verdict.decision));
    reason.add(hit.explanation), amount.add(e.amount.minor_units), currency.add(e.amount.currency);
    occurred.add(e.occurred_at), shadow.add(hit.shadow ? "true" : "false"),
        event_score.add(std::int64_t{verdict.score});
    shadow_decision.add(rules::to_string(verdict.shadow_decision));
    ++count;
  }

  void insert(pqxx::work& tx, const std::string& rule_set_version, const std::string& alerts_topic) const {
    tx.exec_prepared("alerts", source.str(), id.str(), transaction.str(), account.str(), rule.str(), score.str(),
                     decision.str(), reason.str(), amount.str(), currency.str(), occurred.str(), rule_set_version,
                     alerts_topic, shadow.str(), event_score.str(), shadow_decision.str());
  }
};

/// The duplicates of one transaction, one array per column, to compare with the applied copies.
struct DuplicateColumns {
  postgres::ArrayLiteral source, id, topic, partition, offset, digest, body;
  std::size_t count = 0;

  void add(const PartitionBatch& batch, const DecodedRecord& r, std::int64_t body_digest, std::string_view json) {
    source.add(r.event->source), id.add(r.event->event_id), topic.add(batch.topic);
    partition.add(std::int64_t{batch.partition}), offset.add(r.record.offset);
    digest.add(body_digest), body.add(json);
    ++count;
  }

  /// Records the ones whose content differs from the applied copy; returns their topic and partition.
  pqxx::result insert_conflicts(pqxx::work& tx) const {
    return tx.exec_prepared("conflicts", source.str(), id.str(), topic.str(), partition.str(), offset.str(),
                            digest.str(), body.str());
  }
};

/// Inserts the events of the `owned` batches into processed_events; returns the keys (dedup_key)
/// that were new. `digests[b][k]`: the body digest of record k of batch b.
std::unordered_set<std::string> insert_new(pqxx::work& tx, std::span<const PartitionBatch> batches,
                                           const std::vector<std::size_t>& owned,
                                           const std::vector<std::vector<std::int64_t>>& digests);

/// A record decoding rejected, into the dead letters and the outbox's DLQ topic.
void insert_rejected(pqxx::work& tx, const PartitionBatch& batch, const DecodedRecord& r, const OutboxTopics& topics);

/// The batch's new events (`bodies[k]`: applied[k] as JSON) and the verdict each got, into the
/// history, with the rules' and the lists' versions they were decided under and the rules a
/// suppression silenced, and whether each was declined (migrations/0029).
void insert_history(pqxx::work& tx, const std::vector<const events::Event*>& applied,
                    std::span<const std::string> bodies, const std::vector<rules::Verdict>& verdicts,
                    const std::vector<bool>& declined, const std::string& rule_set_version, std::int64_t applied_batch,
                    const rules::ListsAsOf& lists);

}  // namespace fraud::store
