// The service's threads together, without Kafka: the batch loop (fed through the
// RecordSource seam, as KafkaSource feeds it), the operator endpoints answering scrapes on
// their own thread, and rule reloads by SIGHUP count and file change, all at once. Meant
// for ThreadSanitizer (scripts/test runs it in build-tsan/); librdkafka's threads cannot
// run under TSan, see the README's "Security" section.
#include <doctest/doctest.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "consumer/batch_loop.h"
#include "consumer/endpoints.h"
#include "consumer/rule_reload.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// One partition of records, handed out by poll() as a consumer would. The partition is
/// assigned at the first poll, inside it, as librdkafka's rebalance callback does.
class InMemorySource final : public consumer::RecordSource {
 public:
  InMemorySource(consumer::PartitionOwner& owner, std::deque<events::Record> records)
      : owner_(owner), records_(std::move(records)) {}

  std::optional<events::Record> poll(std::chrono::milliseconds) override {
    if (!assigned_) {
      assigned_ = true;
      auto from = owner_.on_assigned({kTopic, 0}).value_or(0);
      while (!records_.empty() && records_.front().offset < from) records_.pop_front();
    }
    if (paused_ || records_.empty()) return std::nullopt;
    auto record = std::move(records_.front());
    records_.pop_front();
    return record;
  }
  void commit(const consumer::TopicPartition&, std::int64_t next_offset) override { committed = next_offset; }
  void pause(const consumer::TopicPartition&) override { paused_ = true; }
  void resume(const consumer::TopicPartition&) override { paused_ = false; }
  bool seek(const consumer::TopicPartition&, std::int64_t offset) override {
    while (!records_.empty() && records_.front().offset < offset) records_.pop_front();
    return true;
  }
  bool in_group() const override { return true; }

  static constexpr const char* kTopic = "transactions";
  std::atomic<std::int64_t> committed{0};

 private:
  consumer::PartitionOwner& owner_;
  std::deque<events::Record> records_;
  bool assigned_ = false, paused_ = false;
};

std::deque<events::Record> records(int count) {
  std::deque<events::Record> out;
  for (int i = 0; i < count; ++i) {
    auto event = transaction_event(i, i % 10 == 0 ? "12500.00" : "12.00");
    out.push_back({InMemorySource::kTopic, 0, i, 0, event.key, {}, event.value});
  }
  return out;
}

/// A copy of the tests' rule file that a thread can rewrite.
std::string rule_file_copy() {
  auto path = std::filesystem::temp_directory_path() / (unique_name("rules") + ".yaml");
  std::filesystem::copy_file(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml", path);
  return path.string();
}

}  // namespace

TEST_CASE("the batch loop, scrapes and rule reloads run side by side without a data race") {
  constexpr int kEvents = 10000;
  TestDatabase db(Services::from_environment());
  prometheus::Registry registry;
  consumer::ServiceMetrics metrics(registry);
  metrics.initialise({InMemorySource::kTopic});
  consumer::HealthState health;
  consumer::DatabaseProbe probe(db.service_url());
  consumer::HealthConfig health_config;
  ops::HttpServer server("127.0.0.1:0", consumer::operator_routes(registry, metrics, probe, health, health_config));

  auto rule_file = rule_file_copy();
  std::atomic<unsigned> sighups{0};
  consumer::RuleReloader reloader(rule_file, {}, 1ms, sighups, metrics);
  consumer::BatchApplier store(db.service_url(), "g", "threads", {});
  consumer::BatchLoop* loop_ptr = nullptr;
  consumer::LoopCallbacks hooks;
  hooks.between_batches = [&] { reloader.check(*loop_ptr); };
  consumer::BatchLoop loop({.max_records = 100, .max_wait_ms = 5}, {}, {.days = 0, .days_ahead = 7}, store,
                           reloader.load_initial(), metrics, health, hooks);
  loop_ptr = &loop;
  InMemorySource source(loop, records(kEvents));

  std::atomic<bool> stop{false}, done{false};
  std::atomic<int> scrapes{0}, bad_scrapes{0};
  std::thread scraper([&] {
    while (!done) {
      for (const char* target : {"/metrics", "/healthz", "/readyz"}) {
        int status = 0;
        if (!http_get(server.port(), target, &status) || (status != 200 && status != 503)) ++bad_scrapes;
        ++scrapes;
      }
    }
  });
  std::thread operator_thread([&] {  // what an operator does meanwhile: edit the file, send SIGHUP
    for (int i = 0; i < 5 && !done; ++i) {
      std::ofstream(rule_file, std::ios::app) << "# edit " << i << "\n";
      sighups.fetch_add(1);
      std::this_thread::sleep_for(20ms);  // paces the edits; nothing waits on it
    }
  });
  std::thread stopper([&] {
    wait_until(120s, [&] { return source.committed.load() == kEvents; });
    stop = true;
  });

  loop.run(source, stop);
  done = true;
  for (auto* t : {&scraper, &operator_thread, &stopper}) t->join();
  std::filesystem::remove(rule_file);

  CHECK(source.committed.load() == kEvents);
  CHECK(db.count("SELECT count(*) FROM processed_events") == kEvents);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == kEvents / 10);
  CHECK(scrapes.load() > 0);
  CHECK(bad_scrapes.load() == 0);
  CHECK(metrics.rule_reloads("ok").Value() >= 1);
}
