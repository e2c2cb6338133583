#pragma once
// The one way a process of ours opens a PostgreSQL connection: the service's batches and
// probes, the relay, the console's desks, the maintenance commands and the simulator.

#include <pqxx/pqxx>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fraud::postgres {

/// `url` with `connect_timeout=5` unless it names a connect timeout: libpq waits forever by
/// default for a host that does not answer, and no process of ours may hang on that.
/// Accepts both forms libpq does: a postgresql:// URI and a "key=value" string.
std::string with_connect_timeout(const std::string& url);

/// Parameters a session sets before its first statement, e.g. {"lock_timeout", "5s"}: names
/// are the code's own, values are quoted.
using SessionSettings = std::vector<std::pair<std::string, std::string>>;

/// A new connection to `url` with a connect timeout and `settings` in force for its life.
/// Throws pqxx::broken_connection when the database cannot be reached.
std::unique_ptr<pqxx::connection> connect(const std::string& url, const SessionSettings& settings = {});

}  // namespace fraud::postgres
