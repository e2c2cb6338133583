#include "outbox/relay.h"

#include <librdkafka/rdkafkacpp.h>
#include <simdjson.h>

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
#include "ops/kafka.h"
#include "ops/log.h"
#include "ops/mechanism_switch.h"

namespace fraud::outbox {
namespace {

namespace log = ops::log;
constexpr int kBuckets = 16;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long the reports of purged messages may take, and how long to wait between retries of
/// a failed batch (doubling from the first to the last).
constexpr auto kPurgeWait = 5s;
constexpr std::chrono::milliseconds kFirstBackoff = 500ms, kMaxBackoff = 30s;

// Rows that cannot be published. A row that the producer or the broker refuses for what it is
// (larger than message.max.bytes, larger than a log segment, an invalid record) will be
// refused on every attempt. Retrying it with its batch would wedge the outbox behind it;
// marking it published would claim a delivery that never happened. So the relay leaves it
// unpublished (published_at stays NULL, its payload stays in the table), logs it at error
// level with its id, counts it in fraud_outbox_unpublishable_rows_total, and skips it for the
// rest of this process's life. It still counts in fraud_outbox_pending_rows, a restarted relay
// tries it once more and reports it again, and an operator decides its fate (republish it
// smaller, raise the limits, or delete it). The rows behind it, of its key too, go on: order
// within a key is given up for a row that can never be sent, rather than every row after it.
bool refused_for_what_it_is(RdKafka::ErrorCode err) {
  return err == RdKafka::ERR_MSG_SIZE_TOO_LARGE || err == RdKafka::ERR_RECORD_LIST_TOO_LARGE ||
         err == RdKafka::ERR_INVALID_RECORD;
}

/// What became of one row's messages: one, or two when fault injection duplicates it.
struct RowDelivery {
  std::size_t messages = 0, reported = 0, acknowledged = 0;
  RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;  ///< the first failure
  std::string reason;
  bool refused_by_produce = false;  ///< produce() itself refused a message: it judged that message alone

  bool acknowledged_all() const { return messages > 0 && acknowledged == messages; }
  void fail(RdKafka::ErrorCode err, std::string why, bool by_produce) {
    if (error != RdKafka::ERR_NO_ERROR) return;
    error = err;
    reason = std::move(why);
    refused_by_produce = by_produce;
  }
};

/// The delivery state of the batch in hand. The relay owns it, not a stack frame, and every
/// message carries a number as its opaque, not a pointer: a report that comes after its batch
/// was given up on finds a number that no row of the current batch has, and changes nothing.
class BatchDeliveries {
 public:
  void start(std::size_t rows) {
    rows_.assign(rows, {});
    row_of_.clear();
    first_ = next_;
    outstanding_ = 0;
  }

  /// Numbers the next message, of row `row`, as owed a report.
  void* expect(std::size_t row) {
    row_of_.push_back(row);
    ++rows_[row].messages;
    ++outstanding_;
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(next_++));
  }

  /// produce() refused the message `expect` numbered last: no report will come for it.
  void refused(std::size_t row, RdKafka::ErrorCode err) {
    --outstanding_;
    ++rows_[row].reported;
    rows_[row].fail(err, RdKafka::err2str(err), true);
  }

  void report(void* opaque, RdKafka::ErrorCode err, const std::string& why) {
    auto number = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(opaque));
    if (number < first_ || number >= next_) return;  // from a batch given up on
    auto& row = rows_[row_of_[number - first_]];
    --outstanding_;
    ++row.reported;
    if (err == RdKafka::ERR_NO_ERROR) ++row.acknowledged;
    else row.fail(err, why, false);
  }

  /// Fails every row still owed a report; any report that comes later is ignored.
  void abandon() {
    for (auto& row : rows_)
      if (row.reported < row.messages) row.fail(RdKafka::ERR__TIMED_OUT, "no delivery report", false);
    first_ = next_;
    outstanding_ = 0;
  }

  std::size_t outstanding() const { return outstanding_; }
  const RowDelivery& row(std::size_t i) const { return rows_[i]; }

 private:
  std::vector<RowDelivery> rows_;
  std::vector<std::size_t> row_of_;     ///< message number - first_ -> row
  std::uint64_t first_ = 1, next_ = 1;  // 0 is never a message's number
  std::size_t outstanding_ = 0;
};

struct DeliveryReports : RdKafka::DeliveryReportCb {
  explicit DeliveryReports(BatchDeliveries& b) : batch(b) {}
  void dr_cb(RdKafka::Message& message) override {
    batch.report(message.msg_opaque(), message.err(), message.errstr());
  }
  BatchDeliveries& batch;
};

/// What to do with each row of a batch once its reports are in (indexes into the batch).
struct Verdict {
  std::vector<std::size_t> acknowledged, unpublishable, failed;
  bool refused_in_a_group = false;  ///< the broker refused a message of a multi-row batch for what it is
};

/// {1,2,3}: a PostgreSQL array literal, bound as one parameter.
template <typename Ids>
std::string array_literal(const Ids& ids) {
  std::string out = "{";
  for (const auto& id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
  return out + "}";
}

/// A column as bytes: bytea as it is, anything else as its UTF-8 text.
std::string bytes_of(pqxx::connection& c, const std::string& table, const std::string& column) {
  auto type = pqxx::nontransaction(c).exec_params(
      "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 "
      "AND NOT attisdropped",
      table, column);
  if (type.empty()) throw std::runtime_error("outbox table " + table + " has no column " + column);
  auto quoted = c.quote_name(column);
  return type[0][0].as<std::string>() == "bytea" ? quoted : "convert_to(" + quoted + "::text, 'UTF8')";
}

/// Kafka headers from the headers column: [[name, value], …] or {name: value}; a value
/// {"hex": "…"} holds bytes that are not text.
RdKafka::Headers* headers_of(const std::string& json, simdjson::dom::parser& parser) {
  auto* headers = RdKafka::Headers::create();
  simdjson::dom::element doc;
  if (json.empty() || parser.parse(json).get(doc)) return headers;
  auto add = [&](std::string_view name, simdjson::dom::element value) {
    std::string_view text, hex;
    if (value.get(text) == simdjson::SUCCESS) return void(headers->add(std::string(name), text.data(), text.size()));
    if (value["hex"].get(hex) == simdjson::SUCCESS) {
      std::string bytes;
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
      headers->add(std::string(name), bytes.data(), bytes.size());
    }
  };
  simdjson::dom::array pairs;
  simdjson::dom::object map;
  if (doc.get(pairs) == simdjson::SUCCESS) {
    for (simdjson::dom::element pair : pairs) {
      std::string_view name;
      simdjson::dom::element value;
      if (pair.at(0).get(name) == simdjson::SUCCESS && pair.at(1).get(value) == simdjson::SUCCESS) add(name, value);
    }
  } else if (doc.get(map) == simdjson::SUCCESS) {
    for (auto [name, value] : map) add(name, value);
  }
  return headers;
}

}  // namespace

struct Relay::Impl {
  Impl(RelayConfig c, RelayStats& s) : config(std::move(c)), stats(s), random(std::random_device{}()) {}

  void connect() {
    if (db && db->is_open()) return;
    db = std::make_unique<pqxx::connection>(config.postgres_url);
    prepare(*db);
  }

  // Statements are built from the configured identifiers, quoted; values are parameters.
  void prepare(pqxx::connection& c) {
    const auto& t = config.table;
    auto table = c.quote_name(t.table), id = c.quote_name(t.id), key = c.quote_name(t.key);
    std::string unsent = config.delete_sent ? "true" : c.quote_name(t.sent_at) + " IS NULL";
    std::string created = t.created_at.empty()
                              ? "NULL::bigint"
                              : "(extract(epoch FROM " + c.quote_name(t.created_at) + ") * 1000000)::bigint";
    std::string headers = t.headers.empty() ? "''" : "coalesce(" + c.quote_name(t.headers) + "::text, '')";
    c.prepare("buckets", "SELECT b FROM generate_series(0, " + std::to_string(kBuckets - 1) +
                             ") AS b WHERE pg_try_advisory_xact_lock(hashtext($1), b)");
    // $3: the rows this process found it cannot publish, skipped (see refused_for_what_it_is).
    // The hash is widened before abs(): abs() of the one key hashing to INT_MIN would raise
    // "integer out of range" in every claim.
    c.prepare("claim", "SELECT " + id + ", " + c.quote_name(t.topic) + ", " + bytes_of(c, t.table, t.key) + ", " +
                           headers + ", " + bytes_of(c, t.table, t.payload) + ", " + created + " FROM " + table +
                           " WHERE " + unsent + " AND abs(hashtext(coalesce(" + key + "::text, ''))::bigint) % " +
                           std::to_string(kBuckets) + " = ANY($1::int[]) AND NOT " + id +
                           " = ANY($3::bigint[]) ORDER BY " + id + " LIMIT $2 FOR UPDATE SKIP LOCKED");
    c.prepare("done", config.delete_sent ? "DELETE FROM " + table + " WHERE " + id + " = ANY($1::bigint[])"
                                         : "UPDATE " + table + " SET " + c.quote_name(t.sent_at) + " = now() WHERE " +
                                               id + " = ANY($1::bigint[])");
    c.prepare("pending", "SELECT count(*) FROM " + table + " WHERE " + unsent);
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
  void rebuild_producer() {
    producer.reset();
    make_producer();
  }

  std::size_t publish_once() {
    retry_after = 0ms;
    connect();
    pqxx::work tx(*db);
    auto buckets = free_buckets(tx);
    if (buckets == "{}") return 0;  // every bucket is another relay's right now
    auto rows = tx.exec_prepared("claim", buckets, isolating > 0 ? 1 : config.batch_rows, array_literal(unpublishable));
    if (rows.empty()) return 0;
    if (isolating > 0) --isolating;
    send(rows);
    auto verdict = judge(rows);
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
    return array_literal(buckets);
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
    pqxx::binarystring key(row[2]), payload(row[4]);
    std::unique_ptr<RdKafka::Headers> headers(headers_of(row[3].c_str(), json));
    void* message = deliveries.expect(index);
    for (;;) {
      auto err = producer->produce(row[1].c_str(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                   const_cast<unsigned char*>(payload.data()), payload.size(),
                                   row[2].is_null() ? nullptr : key.data(), row[2].is_null() ? 0 : key.size(), 0,
                                   headers.get(), message);
      if (err == RdKafka::ERR_NO_ERROR) return static_cast<void>(headers.release());  // the message owns them now
      if (err != RdKafka::ERR__QUEUE_FULL || Clock::now() >= deadline) return deliveries.refused(index, err);
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

  Verdict judge(const pqxx::result& rows) const {
    Verdict verdict;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& row = deliveries.row(i);
      // relay_acks switched off (mechanisms stage only): every claimed row counts as sent.
      if (row.acknowledged_all() || ops::mechanism_disabled("relay_acks")) verdict.acknowledged.push_back(i);
      else if (!refused_for_what_it_is(row.error)) verdict.failed.push_back(i);
      // The broker refuses a whole record batch for one message in it, so only a row that
      // produce() judged alone, or that was sent alone, is surely refused for itself.
      else if (row.refused_by_produce || rows.size() == 1) verdict.unpublishable.push_back(i);
      else {
        verdict.failed.push_back(i);
        verdict.refused_in_a_group = true;
      }
    }
    return verdict;
  }

  /// Rows that cannot be published: see "Rows that cannot be published" above.
  void set_aside(const pqxx::result& rows, const std::vector<std::size_t>& which) {
    for (auto i : which) {
      unpublishable.insert(rows[i][0].as<std::int64_t>());
      ++stats.unpublishable;
      if (stats.on_unpublishable) stats.on_unpublishable();
      log::error("outbox row cannot be published; it stays unpublished, and this relay skips it until restarted",
                 {{"row", rows[i][0].c_str()},
                  {"topic", rows[i][1].c_str()},
                  {"payload_bytes", std::to_string(pqxx::binarystring(rows[i][4]).size())},
                  {"error", deliveries.row(i).reason}});
    }
  }

  /// A row failed for a reason that may pass: the transaction rolls back, so nothing of the
  /// batch is marked, and the batch is tried again after a backoff. Rows the broker acknowledged
  /// are sent again then: at least once.
  std::size_t roll_back(const pqxx::result& rows, const Verdict& verdict) {
    ++stats.failed_batches;
    backoff = std::clamp(backoff * 2, kFirstBackoff, kMaxBackoff);
    retry_after = backoff;
    // The broker refused a record batch for one of its messages: the batch's rows go one at a
    // time until that one is found and set aside.
    if (verdict.refused_in_a_group) isolating = rows.size();
    auto first = verdict.failed.front();
    log::warn("publish failed; nothing of the batch is marked, and it is sent again",
              {{"row", rows[first][0].c_str()},
               {"topic", rows[first][1].c_str()},
               {"error", deliveries.row(first).reason},
               {"failed_rows", std::to_string(verdict.failed.size())},
               {"rows", std::to_string(rows.size())},
               {"retry_in_ms", std::to_string(retry_after.count())}});
    return 0;
  }

  /// Marks (or deletes) exactly the acknowledged rows, and commits.
  std::size_t mark(pqxx::work& tx, const pqxx::result& rows, const std::vector<std::size_t>& acknowledged) {
    std::vector<std::int64_t> ids;
    for (auto i : acknowledged) ids.push_back(rows[i][0].as<std::int64_t>());
    if (!ids.empty()) tx.exec_prepared("done", array_literal(ids));
    tx.commit();
    backoff = 0ms;
    record_latency(rows, acknowledged);
    stats.published += ids.size();
    if (stats.on_published && !ids.empty()) stats.on_published(ids.size());
    return ids.size();
  }

  void record_latency(const pqxx::result& rows, const std::vector<std::size_t>& acknowledged) {
    if (!stats.observe_latency) return;
    auto now = events::wall_clock_now();
    for (auto i : acknowledged)
      if (!rows[i][5].is_null()) stats.observe_latency(static_cast<double>(now - rows[i][5].as<std::int64_t>()) / 1e6);
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

  RelayConfig config;
  RelayStats& stats;
  std::unique_ptr<pqxx::connection> db;
  simdjson::dom::parser json;
  std::mt19937 random;
  long batches_published = 0;
  std::set<std::int64_t> unpublishable;  ///< rows refused for what they are; skipped until restart
  std::size_t isolating = 0;             ///< claims left that take one row each
  std::chrono::milliseconds backoff{0}, retry_after{0};
  // Declared before the producer, so they outlive it: its last reports still find them.
  BatchDeliveries deliveries;
  DeliveryReports reports{deliveries};
  std::unique_ptr<RdKafka::Producer> producer;
};

namespace {

/// Sleeps for `duration`, or less when `stop` is set meanwhile: a backoff must not hold up SIGTERM.
void pause(const std::atomic<bool>& stop, std::chrono::milliseconds duration) {
  auto until = Clock::now() + duration;
  while (!stop.load() && Clock::now() < until)
    std::this_thread::sleep_for(std::min(duration, std::chrono::milliseconds(100)));
}

}  // namespace

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
      if (impl_->retry_after > 0ms) pause(stop, impl_->retry_after);
      else if (published == 0) std::this_thread::sleep_for(impl_->config.idle_poll);
    } catch (const pqxx::broken_connection& e) {
      log::warn("database connection lost; reconnecting", {{"error", e.what()}});
      impl_->db.reset();
      pause(stop, std::chrono::seconds(1));
    } catch (const pqxx::sql_error& e) {
      log::warn("database error; retrying", {{"error", e.what()}});
      impl_->db.reset();
      pause(stop, std::chrono::seconds(1));
    }
  }
}

std::size_t Relay::republish(const std::string& postgres_url, const OutboxTable& t, std::int64_t id_from,
                             std::int64_t id_to) {
  pqxx::connection c(postgres_url);
  pqxx::work tx(c);
  auto sent = c.quote_name(t.sent_at), id = c.quote_name(t.id);
  auto rows = tx.exec_params("UPDATE " + c.quote_name(t.table) + " SET " + sent + " = NULL WHERE " + id +
                                 " BETWEEN $1 AND $2 AND " + sent + " IS NOT NULL",
                             id_from, id_to);
  tx.commit();
  return rows.affected_rows();
}

}  // namespace fraud::outbox
