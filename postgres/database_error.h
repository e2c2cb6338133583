#pragma once
// One place decides whether a PostgreSQL failure is worth retrying.

#include <stdexcept>
#include <string>

namespace fraud::postgres {

/// A failed batch transaction. Only a `record_fault` (a data exception, SQLSTATE class 22, or
/// a value past a limit, 54000) can be caused by one record's bytes: the batch loop narrows it
/// down to the record and rejects that one. Every other failure (connection lost, shutdown,
/// serialization, deadlock, an in-doubt commit, a statement timeout, a lost grant, a full
/// disk, an internal error) says nothing about the records: the whole batch is retried with
/// backoff while its partition is paused, counted by `reason`, until it commits. The batch is
/// idempotent, so replaying one that did commit (an in-doubt commit) changes nothing.
struct DatabaseError : std::runtime_error {
  DatabaseError(const std::string& message, bool is_record_fault, std::string reason_label)
      : std::runtime_error(message), record_fault(is_record_fault), reason(std::move(reason_label)) {}

  bool record_fault;
  std::string reason;  ///< bounded label for metrics: connection, shutdown, privilege, …, or class_XX
};

/// Classifies the exception being handled; call only inside a catch block. Whatever
/// happened, `connection_lost` makes it transient: an error on a dead connection says
/// nothing about the batch.
[[noreturn]] void rethrow_as_database_error(bool connection_lost = false);

}  // namespace fraud::postgres
