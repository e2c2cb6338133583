#include "outbox/relay.h"

#include <librdkafka/rdkafkacpp.h>
#include <simdjson.h>

#include <csignal>
#include <pqxx/pqxx>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ops/log.h"

namespace fraud::outbox {
namespace {

namespace log = ops::log;
constexpr int kBuckets = 16;

/// Delivery reports of one batch, counted by the producer's callback.
struct Deliveries {
  std::size_t delivered = 0, failed = 0;
  std::string first_error;
};

struct DeliveryCounter : RdKafka::DeliveryReportCb {
  void dr_cb(RdKafka::Message& message) override {
    auto* batch = static_cast<Deliveries*>(message.msg_opaque());
    if (!batch) return;
    if (message.err() == RdKafka::ERR_NO_ERROR) ++batch->delivered;
    else if (++batch->failed == 1) batch->first_error = message.errstr();
  }
};

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
      for (std::size_t i = 0; i + 1 < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
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

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
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
    c.prepare("buckets",
              "SELECT b FROM generate_series(0, " + std::to_string(kBuckets - 1) +
                  ") AS b WHERE pg_try_advisory_xact_lock(hashtext($1), b)");
    c.prepare("claim", "SELECT " + id + ", " + c.quote_name(t.topic) + ", " + bytes_of(c, t.table, t.key) + ", " +
                           headers + ", " + bytes_of(c, t.table, t.payload) + ", " + created + " FROM " + table +
                           " WHERE " + unsent + " AND abs(hashtext(coalesce(" + key + "::text, ''))) % " +
                           std::to_string(kBuckets) + " = ANY($1::int[]) ORDER BY " + id +
                           " LIMIT $2 FOR UPDATE SKIP LOCKED");
    c.prepare("done", config.delete_sent
                          ? "DELETE FROM " + table + " WHERE " + id + " = ANY($1::bigint[])"
                          : "UPDATE " + table + " SET " + c.quote_name(t.sent_at) + " = now() WHERE " + id +
                                " = ANY($1::bigint[])");
    c.prepare("pending", "SELECT count(*) FROM " + table + " WHERE " + unsent);
  }

  void make_producer() {
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    auto set = [&](const std::string& name, const std::string& value) {
      if (conf->set(name, value, error) != RdKafka::Conf::CONF_OK) throw std::runtime_error("kafka property " + name + ": " + error);
    };
    set("linger.ms", "5");
    for (const auto& [name, value] : config.kafka_properties) set(name, value);
    set("bootstrap.servers", config.bootstrap_servers);
    set("enable.idempotence", "true");  // no duplicates or reordering from the producer's own retries
    if (conf->set("dr_cb", &deliveries_cb, error) != RdKafka::Conf::CONF_OK) throw std::runtime_error(error);
    producer.reset(RdKafka::Producer::create(conf.get(), error));
    if (!producer) throw std::runtime_error("kafka producer: " + error);
  }

  std::size_t publish_once() {
    connect();
    pqxx::work tx(*db);
    std::string buckets = "{";
    for (const auto& row : tx.exec_prepared("buckets", "outbox-relay:" + config.table.table))
      buckets += (buckets.size() > 1 ? "," : "") + std::string(row[0].c_str());
    buckets += "}";
    if (buckets == "{}") return 0;  // every bucket is another relay's right now
    auto rows = tx.exec_prepared("claim", buckets, config.batch_rows);
    if (rows.empty()) return 0;
    Deliveries batch;
    std::size_t sent = produce(rows, batch);
    producer->flush(30000);
    if (batch.delivered != sent) {
      ++stats.failed_batches;
      log::warn("publish failed; the rows stay and are sent again",
                {{"rows", std::to_string(rows.size())}, {"error", batch.first_error}});
      return 0;  // the transaction rolls back: nothing is marked
    }
    if (config.crash_after_batches > 0 && ++batches_published == config.crash_after_batches) raise(SIGKILL);
    std::string ids = "{";
    for (const auto& row : rows) ids += (ids.size() > 1 ? "," : "") + std::string(row[0].c_str());
    tx.exec_prepared("done", ids + "}");
    tx.commit();
    record_latency(rows);
    stats.published += rows.size();
    if (stats.on_published) stats.on_published(rows.size());
    return rows.size();
  }

  std::size_t produce(const pqxx::result& rows, Deliveries& batch) {
    std::size_t sent = 0;
    std::bernoulli_distribution duplicate(config.duplicate_rate);
    for (const auto& row : rows) {
      int copies = duplicate(random) ? 2 : 1;
      stats.duplicates_sent += static_cast<std::uint64_t>(copies - 1);
      for (int i = 0; i < copies; ++i) sent += produce_row(row, batch) ? 1 : 0;
    }
    return sent;
  }

  bool produce_row(const pqxx::row& row, Deliveries& batch) {
    pqxx::binarystring key(row[2]), payload(row[4]);
    auto* headers = headers_of(row[3].c_str(), json);
    for (;;) {
      auto err = producer->produce(row[1].c_str(), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                                   const_cast<unsigned char*>(payload.data()), payload.size(),
                                   row[2].is_null() ? nullptr : key.data(), row[2].is_null() ? 0 : key.size(), 0,
                                   headers, &batch);
      if (err == RdKafka::ERR_NO_ERROR) return true;  // the message owns the headers now
      if (err != RdKafka::ERR__QUEUE_FULL) {
        delete headers;
        if (++batch.failed == 1) batch.first_error = RdKafka::err2str(err);
        return false;
      }
      producer->poll(100);
    }
  }

  void record_latency(const pqxx::result& rows) {
    if (!stats.observe_latency) return;
    auto now = now_us();
    for (const auto& row : rows)
      if (!row[5].is_null()) stats.observe_latency(static_cast<double>(now - row[5].as<std::int64_t>()) / 1e6);
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
  std::unique_ptr<RdKafka::Producer> producer;
  DeliveryCounter deliveries_cb;
  simdjson::dom::parser json;
  std::mt19937 random;
  long batches_published = 0;
};

Relay::Relay(RelayConfig config, RelayStats& stats) : impl_(std::make_unique<Impl>(std::move(config), stats)) {
  impl_->make_producer();
}

Relay::~Relay() {
  if (impl_ && impl_->producer) impl_->producer->flush(5000);
}

std::size_t Relay::publish_once() { return impl_->publish_once(); }

void Relay::run(const std::atomic<bool>& stop) {
  auto next_pending = std::chrono::steady_clock::now();
  while (!stop.load()) {
    if (std::chrono::steady_clock::now() >= next_pending) {
      impl_->refresh_pending();
      next_pending = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
    try {
      if (publish_once() == 0) std::this_thread::sleep_for(impl_->config.idle_poll);
    } catch (const pqxx::broken_connection& e) {
      log::warn("database connection lost; reconnecting", {{"error", e.what()}});
      impl_->db.reset();
      std::this_thread::sleep_for(std::chrono::seconds(1));
    } catch (const pqxx::sql_error& e) {
      log::warn("database error; retrying", {{"error", e.what()}});
      impl_->db.reset();
      std::this_thread::sleep_for(std::chrono::seconds(1));
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
