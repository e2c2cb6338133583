#pragma once
// One transaction of a desk (case_desk.cpp, list_desk.cpp) on a connection of its own, its
// statements bounded, and the SQLSTATEs the migrations' functions raise turned into the
// desk's errors. Internal to the cases module.

#include <pqxx/pqxx>

#include <string>

#include "cases/case_desk.h"
#include "postgres/connection.h"

namespace fraud::cases::detail {

/// Throws the desk error `error`'s SQLSTATE stands for (P0002, 55000, 22023 and 23514, 42501,
/// FR422, FR428, 55P03 and 57014), else `error`.
[[noreturn]] void rethrow_desk_error(const pqxx::sql_error& error);

/// Runs `work(tx)` in one transaction at `isolation` and commits; whatever `work` returns.
/// READ COMMITTED unless said, whatever the database's default: a retry waiting on its first
/// attempt's idempotency key must see that attempt once it committed (migrations/0019).
template <typename Work>
auto in_transaction(const std::string& url, const char* isolation, Work work) {
  try {
    auto opened = postgres::connect(url);
    auto& connection = *opened;
    pqxx::work tx(connection);
    // A console request never holds a row, or a console thread, for long: a batch joining a
    // case waits at most the functions' lock_timeout, a slow read ends at the statement
    // timeout, and a console frozen before its commit loses its session (and the case's
    // lock) after 10 s.
    tx.exec0(std::string("SET TRANSACTION ISOLATION LEVEL ") + isolation +
             "; SET LOCAL statement_timeout = '5s'; SET LOCAL idle_in_transaction_session_timeout = '10s'");
    auto result = work(tx);
    tx.commit();
    return result;
  } catch (const pqxx::sql_error& e) {
    rethrow_desk_error(e);
  }
}

template <typename Work>
auto in_transaction(const std::string& url, Work work) {
  return in_transaction(url, "READ COMMITTED", std::move(work));
}

}  // namespace fraud::cases::detail
