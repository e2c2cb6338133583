#include "outbox/relay.h"

#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "events/time.h"
#include "ops/backoff.h"
#include "ops/kafka.h"
#include "ops/log.h"
#include "ops/mechanism_switch.h"
#include "outbox/deliveries.h"
#include "outbox/headers.h"
#include "outbox/outbox_table.h"
#include "postgres/array_literal.h"
#include "postgres/connection.h"
#include "postgres/database_error.h"

namespace fraud::outbox {
namespace {

namespace log = ops::log;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long the reports of purged messages may take.
constexpr auto kPurgeWait = 5s;

// Rows that cannot be published. A row that the producer or the broker refuses for what it is
// (larger than message.max.bytes, larger than a log segment, an invalid record, a headers
// column the relay cannot read) will be refused on every attempt. Retrying it with its batch
// would wedge the outbox behind it; marking it published would claim a delivery that never
// happened. So the relay leaves it unpublished (published_at stays NULL, its payload stays in
// the table), logs it at error level with its id, counts it in
// fraud_outbox_unpublishable_rows_total, and skips it for the rest of this process's life. It
// still counts in fraud_outbox_pending_rows, a restarted relay tries it once more and reports
// it again, and an operator decides its fate (republish it smaller, raise the limits, or
// delete it). The rows behind it, of its key too, go on: order within a key is given up for a
// row that can never be sent, rather than every row after it.

struct DeliveryReports : RdKafka::DeliveryReportCb {
  explicit DeliveryReports(BatchDeliveries& b) : batch(b) {}
  void dr_cb(RdKafka::Message& message) override {
    batch.report(message.msg_opaque(), message.err(), message.errstr());
  }
  BatchDeliveries& batch;
};

/// Kafka headers for librdkafka, which takes ownership of them with the message.
/// A header without a value keeps none (a null value), as the record it came from had.
std::unique_ptr<RdKafka::Headers> kafka_headers(const std::vector<Header>& parsed) {
  std::unique_ptr<RdKafka::Headers> headers(RdKafka::Headers::create());
  for (const auto& [name, value] : parsed)
    headers->add(name, value ? value->data() : nullptr, value ? value->size() : 0);
  return headers;
}

/// Sleeps for `duration`, or less when `stop` is set meanwhile: a backoff must not hold up SIGTERM.
void pause(const std::atomic<bool>& stop, std::chrono::milliseconds duration) {
  auto until = Clock::now() + duration;
  while (!stop.load() && Clock::now() < until)
    std::this_thread::sleep_for(std::min(duration, std::chrono::milliseconds(100)));
}

}  // namespace

struct Relay::Impl {
  Impl(RelayConfig c, RelayStats& s) : config(std::move(c)), stats(s), random(std::random_device{}()) {}

  void connect() {
    if (db && db->is_open()) return;
    db = postgres::connect(config.postgres_url);
    prepare_statements(*db, config.table, config.delete_sent);
  }

  void make_producer() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    auto set = [&](const std::string& name, const std::string& value) { ops::set_property(*conf, name, value); };
    set("linger.ms", "5");
    for (const auto& [name, value] : config.kafka_properties) set(name, value);
    set("bootstrap.servers", config.bootstrap_servers);
    set("enable.idempotence", "true");  // no duplicates or reordering from the producer's own retries
    if (conf->set("dr_cb", &reports, error) != RdKafka::Conf::CONF_OK) throw std::runtime_error(error);
    producer.reset(RdKafka::Producer::create(conf.get(), error));
    if (!producer) throw std::runtime_error("kafka producer: " + error);
  }

  /// A new producer, with a new producer id: the idempotent producer accepts nothing more
  /// after a fatal error, and purging in-flight messages leaves its sequence numbers unsure.
  /// When building it fails, the next batch tries again.
  void rebuild_producer() {
    producer.reset();
    make_producer();
  }

  std::size_t publish_once() {
    retry_after = 0ms;
    connect();
    if (!producer) make_producer();
    pqxx::work tx(*db);
    auto buckets = free_buckets(tx);
    if (buckets == "{}") return 0;  // every bucket is another relay's right now
    auto rows = tx.exec_prepared("claim", buckets, isolating > 0 ? 1 : config.batch_rows,
                                 postgres::ArrayLiteral::of(unpublishable));
    if (rows.empty()) return 0;
    if (isolating > 0) --isolating;
    send(rows);
    // relay_acks switched off (mechanisms stage only): every claimed row counts as sent.
    auto verdict = judge(deliveries, ops::mechanism_disabled("relay_acks"));
    set_aside(rows, verdict.unpublishable);
    if (!verdict.failed.empty()) return roll_back(rows, verdict);  // tx is not committed: nothing is marked
    if (config.crash_after_batches > 0 && ++batches_published == config.crash_after_batches) raise(SIGKILL);
    return mark(tx, rows, verdict.acknowledged);
  }

  /// The key buckets no other relay holds, locked for this transaction, as an array literal.
  std::string free_buckets(pqxx::work& tx) {
    std::vector<int> buckets;
    for (const auto& row : tx.exec_prepared("buckets", "outbox-relay:" + config.table.table))
      buckets.push_back(row[0].as<int>());
    return postgres::ArrayLiteral::of(buckets);
  }

  /// Produces every row of the batch and waits for a delivery report on each message.
  void send(const pqxx::result& rows) {
    deliveries.start(rows.size());
    auto deadline = Clock::now() + config.delivery_wait;
    std::bernoulli_distribution duplicate(config.duplicate_rate);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      int copies = duplicate(random) ? 2 : 1;
      stats.duplicates_sent += static_cast<std::uint64_t>(copies - 1);
      for (int copy = 0; copy < copies; ++copy) produce_row(rows[i], i, deadline);
    }
    settle(deadline);
  }

  void produce_row(const pqxx::row& row, std::size_t index, Clock::time_point deadline) {
    void* message = deliveries.expect(index);
    std::unique_ptr<RdKafka::Headers> headers;
    try {
      headers = kafka_headers(parse_headers(row[kHeaders].c_str()));
    } catch (const HeadersError& e) {
      return deliveries.refused(index, RdKafka::ERR_INVALID_RECORD, std::string("headers column: ") + e.what());
    }
    pqxx::binarystring key(row[kKey]), payload(row[kPayload]);
    bool keyed = !row[kKey].is_null();
    for (;;) {
      auto err = producer->produce(row[kTopic].c_str(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                   const_cast<unsigned char*>(payload.data()), payload.size(),
                                   keyed ? key.data() : nullptr, keyed ? key.size() : 0, 0, headers.get(), message);
      if (err == RdKafka::ERR_NO_ERROR) return static_cast<void>(headers.release());  // the message owns them now
      if (err != RdKafka::ERR__QUEUE_FULL || Clock::now() >= deadline)
        return deliveries.refused(index, err, RdKafka::err2str(err));
      producer->poll(100);  // serves delivery reports, which makes room in the queue
    }
  }

  /// Serves delivery reports until every message of the batch has had one. When they are
  /// overdue, or the producer failed fatally, the batch's messages are purged (their reports
  /// then come at once, as failures), whatever is still owed fails its row, and the producer
  /// is rebuilt. So no message of this batch can report into a later one, and no row is
  /// judged on a report it has not had.
  void settle(Clock::time_point deadline) {
    bool all_reported = await_reports(deadline, true);
    auto fatal = fatal_error();
    if (all_reported && !fatal) return;
    if (fatal) log::error("the idempotent producer failed fatally; building a new one", {{"error", *fatal}});
    else
      log::warn("delivery reports overdue; purging the batch's messages and building a new producer",
                {{"outstanding", std::to_string(deliveries.outstanding())}});
    producer->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    await_reports(Clock::now() + kPurgeWait, false);
    deliveries.abandon();
    rebuild_producer();
  }

  /// Serves reports until none is owed (true), or `deadline` passes or, when asked, the
  /// producer has failed fatally (false).
  bool await_reports(Clock::time_point deadline, bool until_fatal) {
    while (deliveries.outstanding() > 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms || (until_fatal && fatal_error())) return false;
      producer->poll(static_cast<int>(std::min(left, std::chrono::milliseconds(100)).count()));
    }
    return true;
  }

  /// Why the idempotent producer failed fatally, or nothing.
  std::optional<std::string> fatal_error() const {
    std::string reason;
    if (producer->fatal_error(reason) == RdKafka::ERR_NO_ERROR) return std::nullopt;
    return reason;
  }

  /// Rows that cannot be published: see "Rows that cannot be published" above.
  void set_aside(const pqxx::result& rows, const std::vector<std::size_t>& which) {
    for (auto i : which) {
      unpublishable.insert(rows[i][kId].as<std::int64_t>());
      ++stats.unpublishable;
      if (stats.on_unpublishable) stats.on_unpublishable();
      log::error("outbox row cannot be published; it stays unpublished, and this relay skips it until restarted",
                 {{"row", rows[i][kId].c_str()},
                  {"topic", rows[i][kTopic].c_str()},
                  {"payload_bytes", std::to_string(pqxx::binarystring(rows[i][kPayload]).size())},
                  {"error", deliveries.row(i).reason}});
    }
  }

  /// A row failed for a reason that may pass: the transaction rolls back, so nothing of the
  /// batch is marked, and the batch is tried again after a backoff. Rows the broker acknowledged
  /// are sent again then: at least once.
  std::size_t roll_back(const pqxx::result& rows, const Verdict& verdict) {
    ++stats.failed_batches;
    retry_after = backoff.fail();
    // The broker refused a record batch for one of its messages: the batch's rows go one at a
    // time until that one is found and set aside.
    if (verdict.refused_in_a_group) isolating = rows.size();
    auto first = verdict.failed.front();
    log::warn("publish failed; nothing of the batch is marked, and it is sent again",
              {{"row", rows[first][kId].c_str()},
               {"topic", rows[first][kTopic].c_str()},
               {"error", deliveries.row(first).reason},
               {"failed_rows", std::to_string(verdict.failed.size())},
               {"rows", std::to_string(rows.size())},
               {"retry_in_ms", std::to_string(retry_after.count())}});
    return 0;
  }

  /// Marks (or deletes) exactly the acknowledged rows, and commits.
  std::size_t mark(pqxx::work& tx, const pqxx::result& rows, const std::vector<std::size_t>& acknowledged) {
    std::vector<std::int64_t> ids;
    for (auto i : acknowledged) ids.push_back(rows[i][kId].as<std::int64_t>());
    if (!ids.empty()) tx.exec_prepared("done", postgres::ArrayLiteral::of(ids));
    tx.commit();
    backoff.reset();
    record_latency(rows, acknowledged);
    stats.published += ids.size();
    if (stats.on_published && !ids.empty()) stats.on_published(ids.size());
    return ids.size();
  }

  void record_latency(const pqxx::result& rows, const std::vector<std::size_t>& acknowledged) {
    if (!stats.observe_latency) return;
    auto now = events::wall_clock_now();
    for (auto i : acknowledged)
      if (!rows[i][kCreatedMicros].is_null())
        stats.observe_latency(static_cast<double>(now - rows[i][kCreatedMicros].as<std::int64_t>()) / 1e6);
  }

  void refresh_pending() {
    try {
      connect();
      auto pending = pqxx::nontransaction(*db).exec_prepared1("pending")[0].as<std::int64_t>();
      if (stats.on_pending) stats.on_pending(pending);
    } catch (const std::exception&) {
      db.reset();
    }
  }

  /// A publish that threw: the database failed (classified as the consumer classifies it), or
  /// the producer could not be built. Whatever it was, the batch was not marked: it is tried
  /// again after a backoff, on a new connection. Returns the wait.
  std::chrono::milliseconds failed(const std::exception& error) {
    ++stats.failed_batches;
    db.reset();
    auto wait = backoff.fail();
    std::string reason = "other";
    try {
      throw;
    } catch (const pqxx::failure&) {
      try {
        postgres::rethrow_as_database_error();
      } catch (const postgres::DatabaseError& e) {
        reason = e.reason;
      }
    } catch (...) {
    }
    log::warn("publish failed; nothing of the batch is marked, and it is tried again",
              {{"reason", reason}, {"error", error.what()}, {"retry_in_ms", std::to_string(wait.count())}});
    return wait;
  }

  RelayConfig config;
  RelayStats& stats;
  std::unique_ptr<pqxx::connection> db;
  std::mt19937 random;
  long batches_published = 0;
  std::set<std::int64_t> unpublishable;  ///< rows refused for what they are; skipped until restart
  std::size_t isolating = 0;             ///< claims left that take one row each
  ops::Backoff backoff{500ms, 30s};      ///< after a failed batch, whatever failed
  std::chrono::milliseconds retry_after{0};
  // Declared before the producer, so they outlive it: its last reports still find them.
  BatchDeliveries deliveries;
  DeliveryReports reports{deliveries};
  std::unique_ptr<RdKafka::Producer> producer;
};

Relay::Relay(RelayConfig config, RelayStats& stats) : impl_(std::make_unique<Impl>(std::move(config), stats)) {
  impl_->make_producer();
}

// Every batch waits for its reports or purges its messages, so nothing is left in flight here;
// the flush is for safety and serves any report into deliveries, which is still alive.
Relay::~Relay() {
  if (impl_ && impl_->producer) impl_->producer->flush(5000);
}

std::size_t Relay::publish_once() { return impl_->publish_once(); }

void Relay::run(const std::atomic<bool>& stop) {
  auto next_pending = Clock::now();
  while (!stop.load()) {
    if (Clock::now() >= next_pending) {
      impl_->refresh_pending();
      next_pending = Clock::now() + std::chrono::seconds(2);
    }
    try {
      auto published = publish_once();
      if (impl_->retry_after > 0ms) {
        pause(stop, impl_->retry_after);
        continue;
      }
      impl_->backoff.reset();  // a turn that failed nothing, idle or not: the next failure waits the least
      if (published == 0) std::this_thread::sleep_for(impl_->config.idle_poll);
    } catch (const OutboxTableError&) {
      throw;  // the configuration names a column the table lacks: no retry mends that
    } catch (const std::exception& e) {
      pause(stop, impl_->failed(e));
    }
  }
}

std::size_t Relay::republish(const std::string& postgres_url, const OutboxTable& table, std::int64_t id_from,
                             std::int64_t id_to) {
  auto connection = postgres::connect(postgres_url);
  return mark_unsent(*connection, table, id_from, id_to);
}

}  // namespace fraud::outbox
