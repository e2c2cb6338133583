#include "cases/case_desk.h"

#include <pqxx/pqxx>

namespace fraud::cases {
namespace {

// The row locked first: a batch joining the case (dedup/cases.cpp) either commits before
// (and its events are labelled) or waits, finds the case closed and opens a new one.
constexpr const char* kLockCase = "SELECT to_jsonb(c), c.state FROM fraud_cases c WHERE case_id = $1 FOR UPDATE";

constexpr const char* kAssignCase = R"sql(
UPDATE fraud_cases SET state = 'assigned', assignee = $2, updated_at = now()
WHERE case_id = $1
RETURNING to_jsonb(fraud_cases))sql";

// The queue: a case's rules are those that fired (live) on its events.
constexpr const char* kQueue = R"sql(
SELECT json_build_object('cases', coalesce(json_agg(q ORDER BY q.last_event_at DESC, q.case_id DESC), '[]'))::text
FROM (
  SELECT c.case_id, c.account_id, c.state, c.assignee, c.decision, c.event_count, c.opened_at, c.last_event_at,
         c.disposition, c.closed_by, c.closed_at,
         (SELECT coalesce(json_agg(DISTINCT a.rule_id), '[]') FROM fraud_case_events e
          JOIN fraud_alerts a ON a.event_source = e.event_source AND a.event_id = e.event_id AND NOT a.shadow
          WHERE e.case_id = c.case_id) AS rules
  FROM fraud_cases c
  WHERE ($1 = '' OR c.state = $1 OR ($1 = 'active' AND c.state <> 'closed')) AND ($2 = '' OR c.decision = $2)
    AND ($3 = '' OR EXISTS (SELECT FROM fraud_case_events e JOIN fraud_alerts a
                            ON a.event_source = e.event_source AND a.event_id = e.event_id
                            WHERE e.case_id = c.case_id AND a.rule_id = $3 AND NOT a.shadow))
  ORDER BY c.last_event_at DESC, c.case_id DESC
  LIMIT $4
) q)sql";

// A case, its events with every rule that fired on them (the explanation is what each rule
// saw), and the account's 20 latest transactions with the decisions the service made.
constexpr const char* kCase = R"sql(
SELECT json_build_object(
  'case', to_jsonb(c),
  'events', (SELECT coalesce(json_agg(json_build_object(
      'event_id', e.event_id, 'transaction_id', e.transaction_id, 'decision', e.decision, 'score', e.score,
      'occurred_at', e.occurred_at,
      'alerts', (SELECT coalesce(json_agg(json_build_object(
          'rule_id', a.rule_id, 'score', a.score, 'reason', a.reason, 'shadow', a.shadow,
          'amount_minor', a.amount_minor, 'currency', a.currency) ORDER BY a.shadow, a.rule_id), '[]')
        FROM fraud_alerts a WHERE a.event_source = e.event_source AND a.event_id = e.event_id))
      ORDER BY e.occurred_at DESC), '[]')
    FROM fraud_case_events e WHERE e.case_id = c.case_id),
  'recent_transactions', (SELECT coalesce(json_agg(r ORDER BY r.occurred_at DESC), '[]') FROM (
      SELECT t.transaction_id, t.occurred_at, t.amount_minor, t.currency, t.merchant_id, t.device_id,
             t.decision, t.score
      FROM transactions t WHERE t.account_id = c.account_id ORDER BY t.occurred_at DESC LIMIT 20) r)
)::text
FROM fraud_cases c WHERE c.case_id = $1)sql";

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

namespace {

/// Locks the case and returns it as JSON; refuses a missing or closed one.
std::string lock_open_case(pqxx::work& tx, std::int64_t case_id) {
  auto locked = tx.exec_params(kLockCase, case_id);
  if (locked.empty()) throw CaseNotFound("case " + std::to_string(case_id) + " does not exist");
  if (locked[0][1].as<std::string>() == "closed")
    throw CaseRefused("case " + std::to_string(case_id) + " is closed already");
  return locked[0][0].c_str();
}

void audit(pqxx::work& tx, const std::string& analyst, const char* action, std::int64_t case_id,
           const std::string& before, const std::string& after) {
  tx.exec_params0(kAudit, analyst, action, "case:" + std::to_string(case_id), before, after);
}

}  // namespace

std::string CaseDesk::queue(const QueueFilter& filter) {
  pqxx::connection connection(url_);
  pqxx::read_transaction tx(connection);
  return tx.exec_params1(kQueue, filter.state, filter.decision, filter.rule, filter.limit)[0].c_str();
}

std::optional<std::string> CaseDesk::find(std::int64_t case_id) {
  pqxx::connection connection(url_);
  pqxx::read_transaction tx(connection);
  auto rows = tx.exec_params(kCase, case_id);
  if (rows.empty()) return std::nullopt;
  return std::string(rows[0][0].c_str());
}

void CaseDesk::assign(std::int64_t case_id, const std::string& assignee, const std::string& analyst) {
  if (assignee.empty()) throw CaseRefused("assigning case " + std::to_string(case_id) + ": no assignee named");
  pqxx::connection connection(url_);
  pqxx::work tx(connection);
  auto before = lock_open_case(tx, case_id);
  auto after = tx.exec_params1(kAssignCase, case_id, assignee);
  audit(tx, analyst, "case.assign", case_id, before, after[0].c_str());
  tx.commit();
}

ClosedCase CaseDesk::close(std::int64_t case_id, Disposition disposition, const std::string& analyst) {
  if (analyst.empty()) throw CaseRefused("closing case " + std::to_string(case_id) + ": no analyst named");
  pqxx::connection connection(url_);
  pqxx::work tx(connection);
  auto before = lock_open_case(tx, case_id);
  auto after = tx.exec_params1(kCloseCase, case_id, to_string(disposition), analyst);
  ClosedCase closed{case_id, 0};
  if (disposition != Disposition::unsure)
    closed.labelled = static_cast<std::size_t>(
        tx.exec_params0(kLabel, case_id, disposition == Disposition::fraud, analyst).affected_rows());
  audit(tx, analyst, "case.close", case_id, before, after[0].c_str());
  tx.commit();
  return closed;
}

}  // namespace fraud::cases
