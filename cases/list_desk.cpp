#include "cases/list_desk.h"

#include <pqxx/pqxx>

#include "cases/desk_transaction.h"

namespace fraud::cases {
namespace {

constexpr const char* kInForce = R"sql(
SELECT json_build_object(
  'entries', (SELECT coalesce(json_agg(e ORDER BY e.created_at DESC, e.entry_id DESC), '[]')
              FROM fraud_list_entries e WHERE e.ended_at IS NULL AND (e.expires_at IS NULL OR e.expires_at > now())),
  'suppressions', (SELECT coalesce(json_agg(s ORDER BY s.created_at DESC, s.suppression_id DESC), '[]')
                   FROM fraud_suppressions s WHERE s.ended_at IS NULL AND s.expires_at > now()))::text)sql";

}  // namespace

std::string ListDesk::in_force() {
  return detail::in_transaction(logins_.analyst_url,
                                [](pqxx::work& tx) { return std::string(tx.exec1(kInForce)[0].c_str()); });
}

std::int64_t ListDesk::add(const NewListEntry& entry, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_list_add($1, $2, $3, $4, $5, $6)", entry.list, entry.value, entry.reason,
                      entry.days, change.by.name, change.idempotency_key)[0]
        .as<std::int64_t>();
  });
}

void ListDesk::end(std::int64_t entry_id, const Change& change) {
  detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx.exec_params1("SELECT fraud_list_end($1, $2, $3)", entry_id, change.by.name, change.idempotency_key)
        .size();
  });
}

std::int64_t ListDesk::suppress(const NewSuppression& suppression, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_suppression_add($1, $2, $3, $4, $5, $6)", suppression.rule, suppression.account,
                      suppression.reason, suppression.days, change.by.name, change.idempotency_key)[0]
        .as<std::int64_t>();
  });
}

void ListDesk::end_suppression(std::int64_t suppression_id, const Change& change) {
  detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_suppression_end($1, $2, $3)", suppression_id, change.by.name,
                      change.idempotency_key)
        .size();
  });
}

}  // namespace fraud::cases
