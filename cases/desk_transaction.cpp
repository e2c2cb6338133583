#include "cases/desk_transaction.h"

namespace fraud::cases::detail {
namespace {

/// The server's primary message: "case 5 does not exist" out of "ERROR:  case 5 does not
/// exist\nCONTEXT: …".
std::string primary_message(const std::string& what) {
  auto text = what.substr(0, what.find('\n'));
  constexpr std::string_view kPrefix = "ERROR:  ";
  if (text.rfind(kPrefix, 0) == 0) text = text.substr(kPrefix.size());
  return text;
}

}  // namespace

void rethrow_desk_error(const pqxx::sql_error& error) {
  // libpqxx 6 leaves the SQLSTATE of an insufficient_privilege empty.
  if (dynamic_cast<const pqxx::insufficient_privilege*>(&error)) throw NotPermitted(primary_message(error.what()));
  auto state = error.sqlstate();
  if (state == "42501") throw NotPermitted(primary_message(error.what()));
  if (state == "FR422") throw KeyReused(primary_message(error.what()));
  if (state == "FR428") throw NeedsSecondLead(primary_message(error.what()));
  if (state == "P0002") throw CaseNotFound(primary_message(error.what()));
  if (state == "55000") throw CaseRefused(primary_message(error.what()));
  if (state == "22023" || state == "23514") throw CaseInvalid(primary_message(error.what()));
  if (state == "55P03" || state == "57014") throw DeskBusy("the database is busy; try again");
  throw;
}

}  // namespace fraud::cases::detail
