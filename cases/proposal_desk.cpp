#include "cases/proposal_desk.h"

#include <pqxx/pqxx>

#include "cases/desk_transaction.h"

namespace fraud::cases {

std::string ProposalDesk::pending() {
  return detail::in_transaction(logins_.analyst_url, [](pqxx::work& tx) {
    return std::string(tx.exec1("SELECT json_build_object('proposals', coalesce(json_agg(p ORDER BY p.proposal_id), "
                                "'[]'))::text FROM fraud_proposals p WHERE state = 'pending' AND expires_at > now()")[0]
                           .c_str());
  });
}

std::int64_t ProposalDesk::propose(const std::string& action, const std::string& request, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_propose($1, $2::jsonb, $3, $4)", action, request, change.by.name,
                      change.idempotency_key)[0]
        .as<std::int64_t>();
  });
}

std::string ProposalDesk::decide(std::int64_t proposal_id, bool approve, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return std::string(tx.exec_params1("SELECT fraud_proposal_decide($1, $2, $3, $4)::text", proposal_id, approve,
                                       change.by.name, change.idempotency_key)[0]
                           .c_str());
  });
}

}  // namespace fraud::cases
