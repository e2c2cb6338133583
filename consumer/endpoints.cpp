#include "consumer/endpoints.h"

#include <prometheus/text_serializer.h>

#include "postgres/connection.h"

namespace fraud::consumer {

DatabaseProbe::DatabaseProbe(std::string url) : url_(std::move(url)), thread_([this] { run(); }) {}

DatabaseProbe::~DatabaseProbe() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool DatabaseProbe::answers() const { return steady_ms() - answered_at_ms_.load() < 6000; }

void DatabaseProbe::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    check();
    lock.lock();
    wake_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; });
  }
}

void DatabaseProbe::check() {
  try {
    if (!connection_ || !connection_->is_open()) connection_ = postgres::connect(url_, {{"statement_timeout", "2s"}});
    pqxx::nontransaction(*connection_).exec("SELECT 1");
    answered_at_ms_ = steady_ms();
  } catch (const std::exception&) {
    connection_.reset();
  }
}

namespace {

ops::HttpResponse readiness(DatabaseProbe& database, const HealthState& health, const HealthConfig& config) {
  auto now = steady_ms();
  bool db = database.answers();
  bool brokers = health.brokers_up.load();
  bool group =
      health.in_group.load() || now - health.out_of_group_since_ms.load() < config.max_rebalance_seconds * 1000;
  bool loop = now - health.loop_heartbeat_ms.load() < 60'000;
  auto line = [](const char* what, bool ok) { return std::string(what) + (ok ? " ok\n" : " FAILING\n"); };
  std::string body =
      line("database", db) + line("kafka brokers", brokers) + line("consumer group", group) + line("batch loop", loop);
  return {db && brokers && group && loop ? 200 : 503, body};
}

ops::HttpResponse liveness(const HealthState& health) {
  bool alive = steady_ms() - health.loop_heartbeat_ms.load() < 120'000;
  return {alive ? 200 : 503, alive ? "ok\n" : "the batch loop has not turned for 120 s\n"};
}

ops::HttpResponse scrape(prometheus::Registry& registry, ServiceMetrics& metrics, DatabaseProbe& database,
                         const HealthState& health, const HealthConfig& config) {
  metrics.ready.Set(readiness(database, health, config).status == 200 ? 1 : 0);
  return {200, prometheus::TextSerializer().Serialize(registry.Collect()), "text/plain; version=0.0.4; charset=utf-8"};
}

}  // namespace

std::vector<std::pair<std::string, ops::HttpHandler>> operator_routes(prometheus::Registry& registry,
                                                                      ServiceMetrics& metrics, DatabaseProbe& database,
                                                                      const HealthState& health,
                                                                      const HealthConfig& config) {
  return {{"/metrics", [&] { return scrape(registry, metrics, database, health, config); }},
          {"/healthz", [&] { return liveness(health); }},
          {"/readyz", [&] { return readiness(database, health, config); }}};
}

}  // namespace fraud::consumer
