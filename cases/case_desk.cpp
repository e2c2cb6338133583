#include "cases/case_desk.h"

#include <pqxx/pqxx>

namespace fraud::cases {
namespace {

// The row locked first: a batch joining the case (dedup/cases.cpp) either commits before
// (and its events are labelled) or waits, finds the case closed and opens a new one.
constexpr const char* kLockCase = "SELECT to_jsonb(c), c.state FROM fraud_cases c WHERE case_id = $1 FOR UPDATE";

constexpr const char* kCloseCase = R"sql(
UPDATE fraud_cases SET state = 'closed', disposition = $2, closed_by = $3, closed_at = now(), updated_at = now()
WHERE case_id = $1
RETURNING to_jsonb(fraud_cases))sql";

constexpr const char* kLabel = R"sql(
INSERT INTO fraud_labels (transaction_id, is_fraud, source, case_id, labelled_by)
SELECT DISTINCT transaction_id, $2::boolean, 'case', $1::bigint, $3::text FROM fraud_case_events WHERE case_id = $1::bigint
ON CONFLICT (transaction_id, source) DO NOTHING)sql";

constexpr const char* kAudit = R"sql(
INSERT INTO audit_log (actor, action, object, before, after) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb))sql";

}  // namespace

std::optional<Disposition> parse_disposition(std::string_view text) {
  if (text == "fraud") return Disposition::fraud;
  if (text == "legitimate") return Disposition::legitimate;
  if (text == "unsure") return Disposition::unsure;
  return std::nullopt;
}

const char* to_string(Disposition disposition) {
  switch (disposition) {
    case Disposition::fraud: return "fraud";
    case Disposition::legitimate: return "legitimate";
    case Disposition::unsure: return "unsure";
  }
  return "unsure";
}

ClosedCase CaseDesk::close(std::int64_t case_id, Disposition disposition, const std::string& analyst) {
  if (analyst.empty()) throw CaseRefused("closing case " + std::to_string(case_id) + ": no analyst named");
  pqxx::connection connection(url_);
  pqxx::work tx(connection);
  auto locked = tx.exec_params(kLockCase, case_id);
  if (locked.empty()) throw CaseRefused("case " + std::to_string(case_id) + " does not exist");
  if (locked[0][1].as<std::string>() == "closed")
    throw CaseRefused("case " + std::to_string(case_id) + " is closed already");
  auto after = tx.exec_params1(kCloseCase, case_id, to_string(disposition), analyst);
  ClosedCase closed{case_id, 0};
  if (disposition != Disposition::unsure)
    closed.labelled = static_cast<std::size_t>(
        tx.exec_params0(kLabel, case_id, disposition == Disposition::fraud, analyst).affected_rows());
  tx.exec_params0(kAudit, analyst, "case.close", "case:" + std::to_string(case_id), locked[0][0].c_str(),
                  after[0].c_str());
  tx.commit();
  return closed;
}

}  // namespace fraud::cases
