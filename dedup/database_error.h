#pragma once
// One place decides whether a PostgreSQL failure is worth retrying.

#include <stdexcept>
#include <string>

namespace fraud::dedup {

/// A failed batch transaction. `transient` failures (connection lost, server shutting down,
/// serialization failure, deadlock, an in-doubt commit) are retried with the whole batch:
/// the batch is idempotent, so replaying one that did commit changes nothing. Anything else
/// is permanent for the statement that failed.
struct DatabaseError : std::runtime_error {
  DatabaseError(const std::string& message, bool is_transient, std::string reason_label)
      : std::runtime_error(message), transient(is_transient), reason(std::move(reason_label)) {}

  bool transient;
  std::string reason;  ///< bounded label for metrics: connection, shutdown, serialization, …
};

/// Classifies the exception being handled; call only inside a catch block. Whatever
/// happened, `connection_lost` makes it transient: an error on a dead connection says
/// nothing about the batch.
[[noreturn]] void rethrow_as_database_error(bool connection_lost = false);

}  // namespace fraud::dedup
