#include "store/batch_store.h"

#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <span>
#include <stdexcept>

#include "ops/mechanism_switch.h"
#include "postgres/array_literal.h"
#include "postgres/database_error.h"
#include "store/cases.h"
#include "store/dedup_gate.h"
#include "store/feature_history.h"
#include "store/first_seen_pairs.h"
#include "store/key_indexes.h"
#include "store/list_entries.h"
#include "store/prior_decisions.h"
#include "store/statements.h"

namespace fraud::store {

using ops::mechanism_disabled;

/// The connection and what this replica learned through it.
struct BatchStore::State {
  std::unique_ptr<pqxx::connection> open;
  events::Decoder history_decoder;  ///< reads back the history's stored event bodies
  FirstSeenPairs pairs;
  ListSnapshot lists;
  /// The key fields this replica's rules registered (migrations/0012), and whether each
  /// one's versions are complete. Registered fields stay registered.
  std::map<rules::KeyField, bool> versions_complete;
  /// The key fields found to have their history index (migrations/0024).
  std::set<rules::KeyField> indexed;
  bool connected_before = false;

  /// The open connection, or a new one (calling `on_reconnect` when it replaces a lost one).
  pqxx::connection& connection(const std::string& url, const std::function<void()>& on_reconnect) {
    if (open && open->is_open()) return *open;
    open.reset();
    try {
      open = open_batch_connection(url);
    } catch (...) {
      postgres::rethrow_as_database_error();
    }
    lists = ListSnapshot{};  // another server (a failover) may have other versions
    if (connected_before && on_reconnect) on_reconnect();
    connected_before = true;
    return *open;
  }

  /// Whether the connection broke; if so, the next call opens a new one.
  bool drop_if_lost() {
    bool lost = open && !open->is_open();
    if (lost) open.reset();
    return lost;
  }
};

namespace {

// Registers key fields (migrations/0012), with the dedup gate held exclusively so that no
// batch is in flight: a field never kept before is complete only if no batch has drawn an
// applied_seq since its versions last were.
constexpr const char* kRegisterKeyFields = R"sql(
UPDATE feature_key_fields
SET maintained = true,
    complete = versions_through IS NOT NULL
               AND versions_through = coalesce(pg_sequence_last_value('applied_batches'), 0)
WHERE key_field = ANY($1::text[]) AND NOT maintained)sql";

// Makes sure every batch from now on, on any replica, keeps the versions of the key fields
// `features` group by: registered ones are known from before; the others are registered
// with the dedup gate held exclusively, which waits for the batches in flight to commit.
void register_key_fields(pqxx::connection& connection, const rules::FeatureEngine& features,
                         std::map<rules::KeyField, bool>& versions_complete) {
  postgres::ArrayLiteral missing;
  std::size_t wanted = 0;
  for (auto field : features.key_fields())
    if (!versions_complete.count(field)) missing.add(rules::to_string(field)), ++wanted;
  if (wanted == 0) return;
  // Learned into a copy, kept only once the transaction committed: a registration rolled
  // back (a lost connection at commit) must be tried again, not remembered as done.
  std::map<rules::KeyField, bool> learned;
  auto learn = [&](pqxx::work& tx) {  // the maintained ones among them; how many
    learned.clear();
    for (const auto& row : tx.exec_params("SELECT key_field, complete FROM feature_key_fields "
                                          "WHERE key_field = ANY($1::text[]) AND maintained",
                                          missing.str()))
      if (auto field = rules::key_field_named(row[0].c_str())) learned[*field] = row[1].as<bool>();
    return learned.size();
  };
  pqxx::work tx(connection);
  if (learn(tx) < wanted) {  // not registered before, by this replica or another
    // Waits for the batches in flight (and holds new ones back) for at most lock_timeout.
    tx.exec(kDedupGateExclusive);
    tx.exec_params0("INSERT INTO feature_key_fields (key_field) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                    missing.str());
    tx.exec_params0(kRegisterKeyFields, missing.str());
    learn(tx);
  }
  tx.commit();
  versions_complete.insert(learned.begin(), learned.end());
}

// A replica never loads a field's keys from a history without an index for it: on months of
// history every load would read each partition whole. The owner builds the index
// (`fraud-consumer migrate`); until then the batch is retried, saying so.
void require_key_indexes(pqxx::connection& connection, const rules::FeatureEngine& features,
                         std::set<rules::KeyField>& indexed) {
  std::vector<rules::KeyField> unchecked;
  for (auto field : fields_read_by_key(features))
    if (!indexed.count(field)) unchecked.push_back(field);
  if (unchecked.empty()) return;
  pqxx::nontransaction tx(connection);
  for (auto field : unchecked) {
    if (!has_key_index(tx, field))
      throw postgres::DatabaseError(
          std::string("the rules read the history by ") + rules::to_string(field) +
              ", which has no index for it: run `fraud-consumer migrate` as the tables' owner with "
              "these rules as rules.file",
          false, "missing_index");
    indexed.insert(field);
  }
}

// Fences and advances every batch's partition in one statement (and takes the dedup gate
// shared); returns the indices of the batches whose partitions this replica still owns, and
// of the inline door's, and marks the others fenced.
std::vector<std::size_t> advance(pqxx::work& tx, const std::string& group_id, std::span<const PartitionBatch> batches,
                                 std::vector<StoredBatch>& results) {
  postgres::ArrayLiteral topics, partitions, epochs, next_offsets;
  for (const auto& batch : batches) {
    if (batch.records.empty() || batch.is_inline()) continue;
    topics.add(batch.topic), partitions.add(std::int64_t{batch.partition});
    epochs.add(batch.epoch), next_offsets.add(batch.next_offset());
  }
  std::set<std::pair<std::string, std::int32_t>> advanced;
  if (!topics.empty())
    for (const auto& row :
         tx.exec_prepared("advance", group_id, topics.str(), partitions.str(), epochs.str(), next_offsets.str()))
      advanced.emplace(row[0].c_str(), row[1].as<std::int32_t>());
  else if (std::any_of(batches.begin(), batches.end(),
                       [](const auto& b) { return b.is_inline() && !b.records.empty(); }))
    tx.exec(kDedupGateShared);  // the inline door's requests alone: the gate, and no fence
  std::vector<std::size_t> owned;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    if (batches[b].records.empty()) continue;
    if (batches[b].is_inline()) {  // no partition to own: its requests are deduplicated like any record
      owned.push_back(b);
      continue;
    }
    // Another assignment owns it: nothing of this batch is written.
    if (advanced.count({batches[b].topic, batches[b].partition}) || mechanism_disabled("fence")) owned.push_back(b);
    else results[b].fenced = true;
  }
  return owned;
}

/// The new events of a transaction, and each one's JSON (serialised once, for its digest and
/// the history).
struct NewEvents {
  std::vector<NewEvent> events;
  std::vector<std::string> bodies;
};

// Dedups the owned batches and records their rejected records; returns their new events in
// the order given (batch by batch, offset order within one). The first occurrence of a new
// id is applied; any later one in the transaction is a duplicate.
NewEvents separate_new_events(pqxx::work& tx, std::span<const PartitionBatch> batches,
                              const std::vector<std::size_t>& owned, const OutboxTopics& topics,
                              std::vector<StoredBatch>& results) {
  std::vector<std::vector<std::int64_t>> digests(batches.size());
  std::vector<std::vector<std::string>> bodies(batches.size());
  for (auto b : owned) {
    digests[b].resize(batches[b].records.size());
    bodies[b].resize(batches[b].records.size());
    for (std::size_t k = 0; k < batches[b].records.size(); ++k)
      if (const auto& r = batches[b].records[k]; r.event) {
        bodies[b][k] = events::to_json(*r.event);
        digests[b][k] = events::body_digest(bodies[b][k]);
      }
  }
  auto fresh = insert_new(tx, batches, owned, digests);
  NewEvents applied;
  DuplicateColumns duplicates;
  for (auto b : owned) {
    auto& result = results[b];
    for (std::size_t k = 0; k < batches[b].records.size(); ++k) {
      const auto& r = batches[b].records[k];
      if (!r.event) {
        insert_rejected(tx, batches[b], r, topics);
        ++result.rejected;
      } else if (fresh.erase(dedup_key(r.event->source, r.event->event_id)) == 0 && !mechanism_disabled("dedup")) {
        ++result.duplicates;
        duplicates.add(batches[b], r, digests[b][k], bodies[b][k]);
      } else {
        ++result.processed;
        result.applied_origins.push_back(r.event->recorded_at.value_or(r.record.timestamp_ms * 1000));
        applied.events.push_back({&*r.event, b});
        applied.bodies.push_back(std::move(bodies[b][k]));
      }
    }
  }
  if (duplicates.count > 0) {
    for (const auto& row : duplicates.insert_conflicts(tx))
      for (auto b : owned)
        if (batches[b].topic == row[0].c_str() && batches[b].partition == row[1].as<std::int32_t>())
          ++results[b].duplicate_conflicts;
  }
  return applied;
}

}  // namespace

BatchStore::BatchStore(std::string postgres_url, std::string group_id, std::string owner, OutboxTopics topics)
    : state_(std::make_unique<State>()), url_(std::move(postgres_url)), group_id_(std::move(group_id)),
      owner_(std::move(owner)), topics_(std::move(topics)) {}

BatchStore::~BatchStore() = default;

std::optional<int> BatchStore::release_stalled_owner(const std::string& topic, std::int32_t partition,
                                                     std::chrono::seconds stalled_for) {
  try {
    pqxx::nontransaction tx(state_->connection(url_, on_reconnect_));
    auto row = tx.exec_params1("SELECT fraud_release_stalled_owner($1, $2, $3, make_interval(secs => $4))", group_id_,
                               topic, partition, static_cast<double>(stalled_for.count()));
    if (row[0].is_null()) return std::nullopt;
    return row[0].as<int>();
  } catch (...) {
    postgres::rethrow_as_database_error(state_->drop_if_lost());
  }
}

Claim BatchStore::claim(const std::string& topic, std::int32_t partition) {
  try {
    pqxx::work tx(state_->connection(url_, on_reconnect_));
    tx.exec0("SET LOCAL statement_timeout = '10s'");  // a claim runs in the rebalance callback
    auto row = tx.exec_prepared1("claim", group_id_, topic, partition, owner_);
    tx.commit();
    Claim claim{row[0].as<std::int64_t>(), std::nullopt};
    if (!row[1].is_null()) claim.next_offset = row[1].as<std::int64_t>();
    return claim;
  } catch (...) {
    postgres::rethrow_as_database_error(state_->drop_if_lost());
  }
}

/// An open batch's transaction, and the columns its stages gather for the inserts at commit.
struct OpenBatch::Work {
  Work(BatchStore::State& store_state, std::string topic) : state(store_state), alerts_topic(std::move(topic)) {}

  /// Runs a stage: any failure becomes a DatabaseError, and a lost connection is dropped so
  /// that the store's next batch opens a new one.
  template <typename Steps>
  auto guarded(Steps steps) -> decltype(steps()) {
    try {
      return steps();
    } catch (...) {
      fail();
    }
  }

  /// Ends the transaction after a failure (before its connection may go: the transaction
  /// refers to it) and rethrows the failure as a DatabaseError.
  [[noreturn]] void fail() {
    tx.reset();
    stage = Stage::failed;
    postgres::rethrow_as_database_error(state.drop_if_lost());
  }

  /// The stages run in order, each once; none after a failure or the commit.
  enum class Stage { begun, loaded, failed, committed };
  void expect(Stage expected, const char* call) const {
    if (stage != expected)
      throw std::logic_error(std::string("OpenBatch::") + call +
                             " out of order: begin, load, record each new event, commit");
  }

  BatchStore::State& state;
  std::string alerts_topic;
  std::unique_ptr<pqxx::work> tx;
  Stage stage = Stage::begun;
  bool writes = false;  ///< some batch is owned: the transaction commits
  std::vector<StoredBatch> results;
  std::vector<const events::Event*> events;  ///< the new events, as OpenBatch::new_events()
  std::vector<std::string> bodies;           ///< each new event's JSON
  std::int64_t applied_batch = 0;            ///< the first applied_seq of the transaction
  std::vector<rules::Verdict> verdicts;
  std::vector<bool> recorded;  ///< per new event
  std::vector<bool> declined;  ///< per new event
  std::string rule_set_version;
  AlertColumns alerts;
  CaseColumns cases;
};

OpenBatch BatchStore::begin(std::span<const PartitionBatch> batches, const rules::FeatureEngine& features) {
  auto work = std::make_unique<OpenBatch::Work>(*state_, topics_.alerts);
  work->results.resize(batches.size());
  try {
    auto& connection = state_->connection(url_, on_reconnect_);
    require_key_indexes(connection, features, state_->indexed);
    register_key_fields(connection, features, state_->versions_complete);
    state_->pairs.register_kinds(connection, features, on_progress_);
    work->tx = std::make_unique<pqxx::work>(connection);
    auto owned = advance(*work->tx, group_id_, batches, work->results);
    if (owned.empty()) {  // nothing to write, or every batch fenced: roll back now, not at commit
      work->tx.reset();
      return OpenBatch(std::move(work));
    }
    work->writes = true;
    auto applied = separate_new_events(*work->tx, batches, owned, topics_, work->results);
    work->bodies = std::move(applied.bodies);
    for (const auto& e : applied.events) work->events.push_back(e.event);
    OpenBatch open(std::move(work));
    open.new_events_ = std::move(applied.events);
    return open;
  } catch (...) {
    if (work) work->fail();  // still here: nothing after the move throws
    postgres::rethrow_as_database_error(state_->drop_if_lost());
  }
}

OpenBatch::OpenBatch(std::unique_ptr<Work> work) : work_(std::move(work)) {}
OpenBatch::OpenBatch(OpenBatch&&) noexcept = default;
OpenBatch::~OpenBatch() = default;

void OpenBatch::load(rules::FeatureEngine& features) {
  work_->expect(Work::Stage::begun, "load");
  if (!work_->writes) {
    work_->stage = Work::Stage::loaded;
    return;
  }
  work_->guarded([&] {
    auto& w = *work_;
    auto& state = w.state;
    if (!mechanism_disabled("key_versions")) synchronise_keys(*w.tx, features, w.events, state.versions_complete);
    load_history(*w.tx, features, w.events, state.history_decoder);
    auto reads = read_batch_header(*w.tx, !w.events.empty());
    // Drawn after the key locks: per key, batches draw in commit order (migrations/0011). The
    // transaction's first applied_seq; its events follow in order.
    if (reads.applied_batch) w.applied_batch = *reads.applied_batch * kAppliedSeqPerBatch;
    first_seen_ = state.pairs.claim(*w.tx, features, w.events, w.applied_batch, reads.pair_kinds);
    // The rows that changed, when lists or suppressions did.
    lists_ = &state.lists.refresh(*w.tx, reads.list_version, reads.list_time);
    w.verdicts.resize(w.events.size());
    w.recorded.assign(w.events.size(), false);
    w.declined.assign(w.events.size(), false);
    w.stage = Work::Stage::loaded;
  });
}

const rules::ListsAsOf& OpenBatch::lists_as_of() const { return work_->state.lists.as_of(); }

void OpenBatch::record(std::size_t i, rules::Verdict verdict, const std::string& rule_set_version, bool declined) {
  auto& w = *work_;
  w.expect(Work::Stage::loaded, "record");
  if (i >= w.events.size() || w.recorded[i]) throw std::logic_error("OpenBatch::record: each new event once");
  w.recorded[i] = true;
  w.declined[i] = declined;
  if (w.rule_set_version.empty()) w.rule_set_version = rule_set_version;
  else if (w.rule_set_version != rule_set_version) throw std::logic_error("one rule set decides a whole transaction");
  const auto& event = *w.events[i];
  for (const auto& hit : verdict.hits) w.alerts.add(event, hit, verdict);
  w.cases.add(event, verdict);
  w.verdicts[i] = std::move(verdict);
}

std::vector<std::optional<PriorDecision>> OpenBatch::prior_decisions(std::span<const events::Event* const> events) {
  auto& w = *work_;
  if (w.stage != Work::Stage::begun && w.stage != Work::Stage::loaded)
    throw std::logic_error("OpenBatch::prior_decisions: only between begin and commit");
  if (!w.writes) return std::vector<std::optional<PriorDecision>>(events.size());
  return w.guarded([&] { return read_prior_decisions(*w.tx, events); });
}

std::vector<StoredBatch> OpenBatch::commit() {
  auto& w = *work_;
  w.expect(Work::Stage::loaded, "commit");
  if (std::find(w.recorded.begin(), w.recorded.end(), false) != w.recorded.end())
    throw std::logic_error("OpenBatch::commit: a new event has no verdict recorded");
  if (!w.writes) {  // rolled back at begin: nothing was written
    w.stage = Work::Stage::committed;
    return std::move(w.results);
  }
  return w.guarded([&] {
    if (!w.events.empty())
      insert_history(*w.tx, w.events, w.bodies, w.verdicts, w.declined, w.rule_set_version, w.applied_batch,
                     w.state.lists.as_of());
    if (w.alerts.count > 0) w.alerts.insert(*w.tx, w.rule_set_version, w.alerts_topic);
    if (w.cases.count > 0) w.cases.insert(*w.tx);
    w.tx->commit();
    w.stage = Work::Stage::committed;
    w.state.pairs.committed();
    return std::move(w.results);
  });
}

}  // namespace fraud::store
