#pragma once
// Cases in the batch's transaction (migrations/0013): an applied event whose live decision
// is review or block opens its account's case, or joins the account's open one. Internal to
// the store module; the analysts' side (closing, dispositions) is cases/.

#include <pqxx/pqxx>

#include <cstddef>

#include "events/event.h"
#include "postgres/array_literal.h"
#include "rules/rule_set.h"

namespace fraud::store {

/// The statement that opens and joins cases, for open_batch_connection() to prepare.
extern const char* const kOpenCases;

/// The flagged events of one batch, one array per column.
struct CaseColumns {
  postgres::ArrayLiteral source, id, transaction, account, decision, score, occurred;
  std::size_t count = 0;

  /// Adds `e` when its live decision is review or block; shadow rules never open a case.
  void add(const events::Event& e, const rules::Verdict& verdict);
  /// Opens or joins each account's case, accounts in order (the order every batch locks them in).
  void insert(pqxx::work& tx) const;
};

}  // namespace fraud::store
