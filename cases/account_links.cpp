#include "cases/account_links.h"

#include <pqxx/pqxx>

#include "cases/case_desk.h"
#include "cases/desk_transaction.h"
#include "postgres/array_literal.h"
#include "rules/key_field.h"
#include "store/key_indexes.h"

namespace fraud::cases {
namespace {

// The fields links are searched by. Merchants are shared by everyone, and a customer is one
// person: neither links accounts the way a card, a device, an address or a payee does.
constexpr rules::KeyField kLinkFields[] = {rules::KeyField::card_fingerprint, rules::KeyField::device_id,
                                           rules::KeyField::device_ip, rules::KeyField::counterparty_account};

// The bounds a links query keeps whatever the history holds (bench/links; docs/BENCHMARKS.md).
constexpr int kOwnEvents = 2000;      // the account's latest events in the period whose values are searched
constexpr int kValuesPerField = 20;   // of those, the most recently used values of each field
constexpr int kEventsPerValue = 500;  // each value's latest events in the period (any account's) read
constexpr const char* kBudget = "SET LOCAL statement_timeout = '2s'";

// The period: `days` days up to the case's last event, that included. What the case's
// account used (`used`): its latest events in the period and, per searched field, the values
// most recently used. Then one branch per searched field (the history's column and the
// field's name from rules/key_field.h, never from a request) reads each value's latest events
// in the period through that field's index, and keeps the other accounts' among them: the
// rows read stay bounded even for a value only the case's account used.
constexpr const char* kUsed = R"sql(
WITH c AS (
  -- ($7, the branches' limit, typed here: with no field indexed no branch names it.)
  SELECT account_id, last_event_at - make_interval(days => $2) AS since, last_event_at AS until,
         $7::bigint AS per_value
  FROM fraud_cases WHERE case_id = $1
), own AS (
  SELECT t.* FROM c, LATERAL (SELECT card_fingerprint, device_id, device_ip, counterparty_account, occurred_at
                              FROM transactions
                              WHERE account_id = c.account_id AND occurred_at BETWEEN c.since AND c.until
                              ORDER BY occurred_at DESC LIMIT $5) t
), used AS (
  SELECT field, value FROM (
    SELECT k.field, k.value, row_number() OVER (PARTITION BY k.field ORDER BY max(o.occurred_at) DESC) AS n
    FROM own o CROSS JOIN LATERAL (VALUES ('card.fingerprint', o.card_fingerprint), ('device.id', o.device_id),
                                          ('device.ip', o.device_ip),
                                          ('counterparty.account', o.counterparty_account)) AS k(field, value)
    WHERE k.value <> '' AND k.field = ANY($4::text[])
    GROUP BY k.field, k.value) u
  WHERE n <= $6
), shared AS ()sql";

// One field's branch: `{field}` and `{column}` are filled in from kLinkFields.
constexpr const char* kBranch = R"sql(
  SELECT u.field, u.value, s.* FROM used u, c, LATERAL (
    SELECT t.account_id, t.transaction_id, t.occurred_at, t.decision FROM transactions t
    WHERE t.{column} = u.value AND t.occurred_at BETWEEN c.since AND c.until
    ORDER BY t.occurred_at DESC LIMIT $7) s
  WHERE u.field = '{field}' AND s.account_id <> c.account_id)sql";

// Per linked account and shared value: its events, decisions and labels (a case's label
// first: transaction_labels) and its open case, if any.
constexpr const char* kLinked = R"sql(
), linked AS (
  SELECT s.field, s.value, s.account_id, count(*) AS events, max(s.occurred_at) AS last_seen,
         count(*) FILTER (WHERE s.decision = 'block') AS blocks, count(*) FILTER (WHERE s.decision = 'review') AS reviews,
         count(*) FILTER (WHERE l.is_fraud) AS fraud, count(*) FILTER (WHERE NOT l.is_fraud) AS legitimate
  FROM shared s LEFT JOIN LATERAL (
    SELECT is_fraud FROM transaction_labels l WHERE l.transaction_id = s.transaction_id) l ON true
  GROUP BY s.field, s.value, s.account_id
  ORDER BY max(s.occurred_at) DESC, s.account_id LIMIT $3
)
SELECT json_build_object(
  'account_id', c.account_id, 'days', $2::int, 'since', c.since, 'until', c.until, 'searched', $4::text[],
  'not_indexed', $8::text[],
  'links', coalesce((SELECT json_agg(json_build_object(
      'field', k.field, 'value', k.value, 'account_id', k.account_id, 'events', k.events, 'last_seen', k.last_seen,
      'blocks', k.blocks, 'reviews', k.reviews, 'labelled_fraud', k.fraud, 'labelled_legitimate', k.legitimate,
      'open_case', (SELECT json_build_object('case_id', o.case_id, 'decision', o.decision, 'state', o.state)
                    FROM fraud_cases o WHERE o.account_id = k.account_id AND o.state <> 'closed'))
    ORDER BY k.last_seen DESC, k.account_id) FROM linked k), '[]'))::text
FROM c)sql";

std::string replaced(std::string text, const std::string& name, std::string_view value) {
  for (auto at = text.find(name); at != std::string::npos; at = text.find(name, at + value.size()))
    text.replace(at, name.size(), value);
  return text;
}

}  // namespace

std::string CaseDesk::links(std::int64_t case_id, const LinkQuery& query) {
  return detail::in_transaction(logins_.analyst_url, [&](pqxx::work& tx) {
    postgres::ArrayLiteral searched, not_indexed;
    std::string sql = kUsed;
    const char* separator = "";
    for (auto field : kLinkFields) {
      if (!store::has_key_index(tx, field)) {
        not_indexed.add(rules::to_string(field));
        continue;
      }
      searched.add(rules::to_string(field));
      const auto& spec = rules::spec_of(field);
      sql += separator + replaced(replaced(kBranch, "{column}", spec.column), "{field}", spec.name);
      separator = "\n  UNION ALL";
    }
    // No field to search: an empty branch keeps the statement's shape.
    if (searched.empty())
      sql +=
          "\n  SELECT ''::text AS field, ''::text AS value, ''::text AS account_id, ''::text AS transaction_id, "
          "now() AS occurred_at, ''::text AS decision WHERE false";
    sql += kLinked;
    tx.exec0(kBudget);
    try {
      auto rows = tx.exec_params(sql, case_id, query.days, query.accounts, searched.str(), kOwnEvents, kValuesPerField,
                                 kEventsPerValue, not_indexed.str());
      if (rows.empty()) throw CaseNotFound("case " + std::to_string(case_id) + " does not exist");
      return std::string(rows[0][0].c_str());
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "57014") throw;
      throw DeskBusy("the links took longer than their budget of 2 s: choose a shorter period");
    }
  });
}

}  // namespace fraud::cases
