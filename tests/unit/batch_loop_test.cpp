// The batch loop through its two seams, a fake source and a fake database: which records go
// into which transaction, and what a fenced partition, a transient failure and a record the
// database refuses do to the others. The real database is the integration tests' business.
#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <set>

#include <prometheus/registry.h>

#include "consumer/batch_loop.h"
#include "events/encode.h"
#include "events/money.h"
#include "events/time.h"
#include "postgres/database_error.h"
#include "tests/support/event_builder.h"

using namespace fraud;

namespace {

constexpr const char* kTopic = "transactions";

/// What each apply() was given; fences and fails as told.
class FakeDatabase final : public consumer::BatchWriter {
 public:
  struct Applied {
    std::int32_t partition;
    std::vector<std::int64_t> offsets;
    std::vector<std::string> rejections;  ///< per record: empty unless refused
  };
  std::vector<std::vector<Applied>> transactions;                ///< every attempt, committed or not
  std::set<std::int32_t> fenced;                                 ///< partitions another replica owns
  int transient_failures = 0;                                    ///< the next attempts that fail so
  std::optional<std::pair<std::int32_t, std::int64_t>> refused;  ///< a record the database refuses

  store::Claim claim(const std::string&, std::int32_t) override { return {1, std::nullopt}; }
  std::optional<int> release_stalled_owner(const std::string&, std::int32_t, std::chrono::seconds) override {
    return std::nullopt;
  }
  std::vector<consumer::BatchResult> apply(std::span<const store::PartitionBatch> batches,
                                           rules::FeatureEngine&) override {
    auto& attempt = transactions.emplace_back();
    for (const auto& b : batches) {
      auto& applied = attempt.emplace_back(Applied{b.partition, {}, {}});
      for (const auto& r : b.records)
        applied.offsets.push_back(r.record.offset), applied.rejections.push_back(r.rejection);
    }
    if (transient_failures > 0) {
      --transient_failures;
      throw postgres::DatabaseError("server closed the connection", false, "connection");
    }
    std::vector<consumer::BatchResult> results;
    for (const auto& b : batches) {
      auto& result = results.emplace_back();
      result.fenced = fenced.count(b.partition) > 0;
      for (const auto& r : b.records)
        if (refused && r.event && refused->first == b.partition && refused->second == r.record.offset)
          throw postgres::DatabaseError("value too long for type character varying(128)", true, "class_22");
      if (!result.fenced) result.processed = b.records.size();
    }
    return results;
  }

  /// How many attempts carried records of `partition`.
  std::size_t attempts_with(std::int32_t partition) const {
    std::size_t n = 0;
    for (const auto& t : transactions)
      for (const auto& a : t) n += a.partition == partition ? 1 : 0;
    return n;
  }
};

/// Partitions 0..3, assigned at the first poll as librdkafka's rebalance callback does; the
/// records in the order given; a paused partition delivers nothing. Stops the loop once
/// `done` holds, or after ten seconds whatever happened (the test then fails on its checks).
class FakeSource final : public consumer::RecordSource {
 public:
  FakeSource(consumer::PartitionOwner& owner, std::deque<events::Record> records, std::atomic<bool>& stop)
      : owner_(owner), records_(std::move(records)), stop_(stop),
        deadline_(std::chrono::steady_clock::now() + std::chrono::seconds(10)) {}

  std::function<bool()> done = [] { return false; };
  std::map<std::int32_t, std::int64_t> committed;
  std::set<std::int32_t> paused;
  std::map<std::int32_t, int> pauses;

  std::optional<events::Record> poll(std::chrono::milliseconds) override {
    if (!assigned_) {
      assigned_ = true;
      for (std::int32_t p = 0; p < 4; ++p) owner_.on_assigned({kTopic, p});
    }
    if (done() || std::chrono::steady_clock::now() > deadline_) stop_ = true;
    for (auto it = records_.begin(); it != records_.end(); ++it) {
      if (paused.count(it->partition)) continue;
      auto record = std::move(*it);
      records_.erase(it);
      return record;
    }
    return std::nullopt;
  }
  void commit(const consumer::TopicPartition& tp, std::int64_t next_offset) override {
    committed[tp.partition] = next_offset;
  }
  void pause(const consumer::TopicPartition& tp) override { paused.insert(tp.partition), ++pauses[tp.partition]; }
  void resume(const consumer::TopicPartition& tp) override { paused.erase(tp.partition); }
  bool seek(const consumer::TopicPartition&, std::int64_t) override { return true; }
  bool in_group() const override { return true; }

 private:
  consumer::PartitionOwner& owner_;
  std::deque<events::Record> records_;
  std::atomic<bool>& stop_;
  bool assigned_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

/// `per_partition` records on each of partitions 0..3, interleaved as a fetch hands them out.
std::deque<events::Record> interleaved(int per_partition) {
  std::deque<events::Record> out;
  for (int offset = 0; offset < per_partition; ++offset)
    for (std::int32_t p = 0; p < 4; ++p) {
      auto e = testing::EventBuilder().id("e-" + std::to_string(p) + "-" + std::to_string(offset));
      e.account("acc-" + std::to_string(p));
      out.push_back({kTopic, p, offset, 0, e.build().account_id, {}, e.json()});
    }
  return out;
}

/// A loop over `database` with rules that need no history. Batches close only when the source
/// is drained or full (max_wait is a minute), so what goes together does not depend on timing.
struct Harness {
  prometheus::Registry registry;
  consumer::ServiceMetrics metrics{registry};
  consumer::HealthState health;
  FakeDatabase database;
  std::atomic<bool> stop{false};

  void run(FakeSource& source, consumer::BatchLoop& loop) { loop.run(source, stop); }
  consumer::BatchLoop loop(std::int64_t max_records) {
    auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::parse(
        "version: t\nrules: [{id: r, when: amount > 1000000, score: 1}]\ndecision: {review_at: 1, block_at: 2}\n",
        "t.yaml"));
    return consumer::BatchLoop({.max_records = max_records, .max_wait_ms = 60000}, {}, {.days = 0, .days_ahead = 7},
                               database, rules, metrics, health);
  }
};

bool all_committed(const FakeSource& source, std::set<std::int32_t> partitions, std::int64_t end) {
  for (auto p : partitions)
    if (!source.committed.count(p) || source.committed.at(p) != end) return false;
  return true;
}

}  // namespace

TEST_CASE("the records of every partition in hand go into one transaction, each partition in offset order") {
  Harness h;
  auto loop = h.loop(1000);
  FakeSource source(loop, interleaved(3), h.stop);
  source.done = [&] { return all_committed(source, {0, 1, 2, 3}, 3); };
  h.run(source, loop);
  REQUIRE(h.database.transactions.size() == 1);
  REQUIRE(h.database.transactions[0].size() == 4);
  for (const auto& applied : h.database.transactions[0]) CHECK(applied.offsets == std::vector<std::int64_t>{0, 1, 2});
  CHECK(all_committed(source, {0, 1, 2, 3}, 3));
}

TEST_CASE("max_records bounds a transaction, shared between the partitions in hand") {
  Harness h;
  auto loop = h.loop(4);
  FakeSource source(loop, interleaved(3), h.stop);
  source.done = [&] { return all_committed(source, {0, 1, 2, 3}, 3); };
  h.run(source, loop);
  CHECK(h.database.transactions.size() == 3);
  for (const auto& t : h.database.transactions) {
    std::size_t records = 0;
    for (const auto& applied : t) records += applied.offsets.size();
    CHECK(records <= 4);
  }
  CHECK(all_committed(source, {0, 1, 2, 3}, 3));
}

TEST_CASE("a fenced partition is paused and its offset not committed while the others in its transaction commit") {
  Harness h;
  h.database.fenced = {2};
  auto loop = h.loop(1000);
  FakeSource source(loop, interleaved(3), h.stop);
  source.done = [&] { return all_committed(source, {0, 1, 3}, 3) && source.paused.count(2); };
  h.run(source, loop);
  CHECK(all_committed(source, {0, 1, 3}, 3));
  CHECK_FALSE(source.committed.count(2));
  CHECK(source.paused == std::set<std::int32_t>{2});
  CHECK(h.database.attempts_with(2) == 1);  // not tried again: it is another replica's now
}

TEST_CASE("a transient failure pauses every partition of its transaction, and the retry applies them all") {
  Harness h;
  h.database.transient_failures = 1;
  auto loop = h.loop(1000);
  FakeSource source(loop, interleaved(3), h.stop);
  source.done = [&] { return all_committed(source, {0, 1, 2, 3}, 3); };
  h.run(source, loop);
  REQUIRE(h.database.transactions.size() == 2);
  CHECK(h.database.transactions[1].size() == 4);
  for (std::int32_t p = 0; p < 4; ++p) CHECK(source.pauses[p] == 1);
  CHECK(source.paused.empty());  // resumed once the retry committed
  CHECK(all_committed(source, {0, 1, 2, 3}, 3));
}

TEST_CASE("a record the database refuses is found partition by partition and rejected, and nothing else is") {
  Harness h;
  h.database.refused = std::make_pair(1, 1);
  auto loop = h.loop(1000);
  FakeSource source(loop, interleaved(3), h.stop);
  source.done = [&] { return all_committed(source, {0, 1, 2, 3}, 3); };
  h.run(source, loop);
  CHECK(all_committed(source, {0, 1, 2, 3}, 3));
  // The last attempt to carry partition 1's offset 1 carried it refused, with the reason.
  std::string reason;
  std::size_t rejected = 0;
  for (const auto& t : h.database.transactions)
    for (const auto& applied : t)
      for (std::size_t k = 0; k < applied.offsets.size(); ++k)
        if (!applied.rejections[k].empty()) {
          ++rejected;
          CHECK(applied.partition == 1);
          CHECK(applied.offsets[k] == 1);
          reason = applied.rejections[k];
        }
  CHECK(rejected == 1);
  CHECK(reason.find("the database refused the record: value too long") == 0);
}
