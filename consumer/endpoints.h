#pragma once
// What the operator's port answers: /metrics, /healthz (liveness) and /readyz (readiness).
// The handlers run on the HTTP server's thread while the batch loop runs on its own; they
// share only HealthState's atomics and prometheus-cpp's (locked) registry.

#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "consumer/config.h"
#include "consumer/metrics.h"
#include "ops/http_server.h"

namespace fraud::consumer {

/// Answers "does the database answer?" for /readyz, at most every two seconds, on a
/// connection of its own (the batch loop's may be busy). Used from one thread only.
class DatabaseProbe {
 public:
  explicit DatabaseProbe(std::string url) : url_(std::move(url)) {}
  bool answers();

 private:
  std::string url_;
  std::unique_ptr<pqxx::connection> connection_;
  std::int64_t next_check_ms_ = 0;
  bool last_ = false;
};

/// The three routes, for ops::HttpServer. Everything passed must outlive the server.
std::vector<std::pair<std::string, ops::HttpHandler>> operator_routes(prometheus::Registry& registry,
                                                                      ServiceMetrics& metrics, DatabaseProbe& database,
                                                                      const HealthState& health,
                                                                      const HealthConfig& config);

}  // namespace fraud::consumer
