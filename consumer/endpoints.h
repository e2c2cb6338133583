#pragma once
// What the operator's port answers: /metrics, /healthz (liveness) and /readyz (readiness).
// The handlers run on the HTTP server's thread while the batch loop runs on its own; they
// share only HealthState's atomics and prometheus-cpp's (locked) registry.

#include <prometheus/registry.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "consumer/config.h"
#include "consumer/metrics.h"
#include "ops/http_server.h"

namespace fraud::consumer {

/// Answers "does the database answer?" for /readyz. A thread of its own asks every two
/// seconds on a connection of its own (the batch loop's may be busy), so a probe or a scrape
/// never waits on the database: during an outage /healthz and /metrics still answer at once.
class DatabaseProbe {
 public:
  explicit DatabaseProbe(std::string url);
  ~DatabaseProbe();
  DatabaseProbe(const DatabaseProbe&) = delete;
  DatabaseProbe& operator=(const DatabaseProbe&) = delete;

  /// True when the database answered within the last six seconds.
  bool answers() const;

 private:
  void run();
  void check();

  std::string url_;
  std::unique_ptr<pqxx::connection> connection_;  ///< the probe thread's only
  std::atomic<std::int64_t> answered_at_ms_{-1'000'000};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

/// The three routes, for ops::HttpServer. Everything passed must outlive the server.
std::vector<std::pair<std::string, ops::HttpHandler>> operator_routes(prometheus::Registry& registry,
                                                                      ServiceMetrics& metrics, DatabaseProbe& database,
                                                                      const HealthState& health,
                                                                      const HealthConfig& config);

}  // namespace fraud::consumer
