#include "consumer/endpoints.h"

#include <prometheus/text_serializer.h>

namespace fraud::consumer {

bool DatabaseProbe::answers() {
  auto now = steady_ms();
  if (now < next_check_ms_) return last_;
  next_check_ms_ = now + 2000;
  try {
    if (!connection_ || !connection_->is_open()) connection_ = std::make_unique<pqxx::connection>(url_);
    pqxx::nontransaction(*connection_).exec("SELECT 1");
    last_ = true;
  } catch (const std::exception&) {
    connection_.reset();
    last_ = false;
  }
  return last_;
}

namespace {

ops::HttpResponse readiness(DatabaseProbe& database, const HealthState& health, const HealthConfig& config) {
  auto now = steady_ms();
  bool db = database.answers();
  bool brokers = health.brokers_up.load();
  bool group = health.in_group.load() || now - health.out_of_group_since_ms.load() < config.max_rebalance_seconds * 1000;
  bool loop = now - health.loop_heartbeat_ms.load() < 60'000;
  auto line = [](const char* what, bool ok) { return std::string(what) + (ok ? " ok\n" : " FAILING\n"); };
  std::string body = line("database", db) + line("kafka brokers", brokers) + line("consumer group", group) +
                     line("batch loop", loop);
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
