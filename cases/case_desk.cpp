#include "cases/case_desk.h"

#include <pqxx/pqxx>

#include "cases/desk_transaction.h"

namespace fraud::cases {
namespace {

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
    AND ($5 = 0 OR c.opened_at <= now() - $5 * interval '1 hour')
    AND ($3 = '' OR EXISTS (SELECT FROM fraud_case_events e JOIN fraud_alerts a
                            ON a.event_source = e.event_source AND a.event_id = e.event_id
                            WHERE e.case_id = c.case_id AND a.rule_id = $3 AND NOT a.shadow))
  ORDER BY c.last_event_at DESC, c.case_id DESC
  LIMIT $4
) q)sql";

// A case, its 200 latest events with every rule that fired on them (the explanation is what
// each rule saw), its comments and what analysts did to it (the audit), and the account's 20
// latest transactions with the decisions the service made (and the rules a suppression
// silenced, which a decision alone does not show). For the page's chart, the account's
// activity in the 30 days up to the case's last event (its 500 latest transactions), each
// marked when it is one of the case's.
constexpr const char* kCase = R"sql(
SELECT json_build_object(
  'case', to_jsonb(c),
  'comments', (SELECT coalesce(json_agg(json_build_object('comment_id', m.comment_id, 'author', m.author,
                                                          'body', m.body, 'at', m.at) ORDER BY m.comment_id), '[]')
    FROM fraud_case_comments m WHERE m.case_id = c.case_id),
  'audit', (SELECT coalesce(json_agg(json_build_object('at', l.at, 'actor', l.actor, 'action', l.action)
                                     ORDER BY l.audit_id), '[]')
    FROM audit_log l WHERE l.object = 'case:' || c.case_id),
  'events', (SELECT coalesce(json_agg(json_build_object(
      'event_id', e.event_id, 'transaction_id', e.transaction_id, 'decision', e.decision, 'score', e.score,
      'occurred_at', e.occurred_at,
      'alerts', (SELECT coalesce(json_agg(json_build_object(
          'rule_id', a.rule_id, 'score', a.score, 'reason', a.reason, 'shadow', a.shadow,
          'amount_minor', a.amount_minor, 'currency', a.currency) ORDER BY a.shadow, a.rule_id), '[]')
        FROM fraud_alerts a WHERE a.event_source = e.event_source AND a.event_id = e.event_id))
      ORDER BY e.occurred_at DESC), '[]')
    FROM (SELECT * FROM fraud_case_events WHERE case_id = c.case_id ORDER BY occurred_at DESC LIMIT 200) e),
  'activity', (SELECT coalesce(json_agg(a ORDER BY a.occurred_at), '[]') FROM (
      SELECT t.transaction_id, t.occurred_at, t.amount_minor, t.currency, t.decision,
             EXISTS (SELECT FROM fraud_case_events e WHERE e.case_id = c.case_id AND e.event_source = t.event_source
                     AND e.event_id = t.event_id) AS in_case
      FROM transactions t WHERE t.account_id = c.account_id
       AND t.occurred_at BETWEEN c.last_event_at - interval '30 days' AND c.last_event_at
      ORDER BY t.occurred_at DESC LIMIT 500) a),
  'recent_transactions', (SELECT coalesce(json_agg(r ORDER BY r.occurred_at DESC), '[]') FROM (
      SELECT t.transaction_id, t.occurred_at, t.amount_minor, t.currency, t.merchant_id, t.device_id,
             t.decision, t.score, t.suppressed_rules
      FROM transactions t WHERE t.account_id = c.account_id ORDER BY t.occurred_at DESC LIMIT 20) r)
)::text
FROM fraud_cases c WHERE c.case_id = $1)sql";

// Precision is over the labelled hits only (transaction_labels: a case's label first); a rule
// whose hits nobody labelled has none.
constexpr const char* kRulePerformance = R"sql(
WITH hits AS (
  SELECT a.rule_id, a.transaction_id, (a.created_at AT TIME ZONE 'UTC')::date AS day
  FROM fraud_alerts a WHERE NOT a.shadow AND a.created_at >= now() - $1::int * interval '1 day'
), per_rule AS (
  SELECT h.rule_id, count(*) AS hits, count(*) FILTER (WHERE l.is_fraud) AS fraud,
         count(*) FILTER (WHERE NOT l.is_fraud) AS legitimate
  FROM hits h LEFT JOIN transaction_labels l USING (transaction_id) GROUP BY h.rule_id
), trend AS (
  SELECT rule_id, json_agg(json_build_object('day', day, 'hits', n) ORDER BY day) AS days
  FROM (SELECT rule_id, day, count(*) AS n FROM hits GROUP BY rule_id, day) d GROUP BY rule_id
)
SELECT json_build_object('days', $1::int, 'rules', coalesce(json_agg(json_build_object(
    'rule_id', p.rule_id, 'hits', p.hits, 'labelled_fraud', p.fraud, 'labelled_legitimate', p.legitimate,
    'precision', CASE WHEN p.fraud + p.legitimate > 0 THEN round(p.fraud::numeric / (p.fraud + p.legitimate), 3) END,
    'trend', t.days) ORDER BY p.hits DESC, p.rule_id), '[]'))::text
FROM per_rule p JOIN trend t USING (rule_id))sql";

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

const char* to_string(Role role) { return role == Role::lead ? "lead" : "analyst"; }

void check_logins(const DeskLogins& logins) {
  auto is_lead = [](const std::string& url) {
    return detail::in_transaction(url, [](pqxx::work& tx) {
      return tx
          .exec1(
              "SELECT pg_has_role(session_user, 'fraud_console_lead', 'MEMBER') OR "
              "(SELECT rolsuper FROM pg_roles WHERE rolname = session_user)")[0]
          .as<bool>();
    });
  };
  if (is_lead(logins.analyst_url))
    throw std::runtime_error(
        "the analysts' database login is a lead's or a superuser: every analyst would act as a lead; give "
        "FRAUD_CONSOLE_POSTGRES_URL a login that is a member of fraud_console only");
  if (!logins.lead_url.empty() && !is_lead(logins.lead_url))
    throw std::runtime_error(
        "the leads' database login is not a member of fraud_console_lead: the database would refuse every "
        "lead's change");
}

std::string CaseDesk::queue(const QueueFilter& filter) {
  return detail::in_transaction(logins_.analyst_url, [&](pqxx::work& tx) {
    return std::string(
        tx.exec_params1(kQueue, filter.state, filter.decision, filter.rule, filter.limit, filter.min_age_hours)[0]
            .c_str());
  });
}

std::string CaseDesk::rule_performance(int days) {
  return detail::in_transaction(logins_.analyst_url, [&](pqxx::work& tx) {
    return std::string(tx.exec_params1(kRulePerformance, days)[0].c_str());
  });
}

std::optional<std::string> CaseDesk::find(std::int64_t case_id) {
  return detail::in_transaction(logins_.analyst_url, [&](pqxx::work& tx) -> std::optional<std::string> {
    auto rows = tx.exec_params(kCase, case_id);
    if (rows.empty()) return std::nullopt;
    return std::string(rows[0][0].c_str());
  });
}

void CaseDesk::assign(std::int64_t case_id, const std::string& assignee, const Change& change) {
  detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_case_assign($1, $2, $3, $4)", case_id, assignee, change.by.name,
                      change.idempotency_key)
        .size();
  });
}

std::int64_t CaseDesk::comment(std::int64_t case_id, const std::string& body, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    return tx
        .exec_params1("SELECT fraud_case_comment($1, $2, $3, $4)", case_id, body, change.by.name,
                      change.idempotency_key)[0]
        .as<std::int64_t>();
  });
}

ClosedCase CaseDesk::close(std::int64_t case_id, int version, Disposition disposition, const Change& change) {
  return detail::in_transaction(logins_.url_for(change.by.role), [&](pqxx::work& tx) {
    auto labelled = tx.exec_params1("SELECT fraud_case_close($1, $2, $3, $4, $5)", case_id, version,
                                    to_string(disposition), change.by.name, change.idempotency_key);
    return ClosedCase{case_id, labelled[0].as<std::size_t>()};
  });
}

}  // namespace fraud::cases
