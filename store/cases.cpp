#include "store/cases.h"

namespace fraud::store {

// One row per account: ON CONFLICT may touch a row once per statement. A copy applied twice
// would count twice in event_count (the primary key of fraud_case_events would hide it), so
// the tests check the count against the topic. Closed cases are outside the partial unique
// index: an event after a close opens a new case.
const char* const kOpenCases = R"sql(
WITH flagged AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::bigint[])
    AS f(event_source, event_id, transaction_id, account_id, decision, score, occurred_us)
), per_account AS (
  SELECT account_id, count(*)::int AS events,
         CASE WHEN bool_or(decision = 'block') THEN 'block' ELSE 'review' END AS decision,
         timestamptz 'epoch' + max(occurred_us) * interval '1 microsecond' AS last_event_at
  FROM flagged GROUP BY account_id
), opened AS (
  INSERT INTO fraud_cases AS c (account_id, decision, event_count, last_event_at)
  SELECT account_id, decision, events, last_event_at FROM per_account ORDER BY account_id
  ON CONFLICT (account_id) WHERE state <> 'closed' DO UPDATE
  SET event_count = c.event_count + EXCLUDED.event_count,
      decision = CASE WHEN c.decision = 'block' OR EXCLUDED.decision = 'block' THEN 'block' ELSE 'review' END,
      last_event_at = greatest(c.last_event_at, EXCLUDED.last_event_at),
      updated_at = now()
  RETURNING case_id, account_id
)
INSERT INTO fraud_case_events (case_id, event_source, event_id, transaction_id, decision, score, occurred_at)
SELECT o.case_id, f.event_source, f.event_id, f.transaction_id, f.decision, f.score,
       timestamptz 'epoch' + f.occurred_us * interval '1 microsecond'
FROM flagged f JOIN opened o USING (account_id)
ON CONFLICT DO NOTHING)sql";

void CaseColumns::add(const events::Event& e, const rules::Verdict& verdict) {
  if (verdict.decision == rules::Decision::allow) return;
  source.add(e.source), id.add(e.event_id), transaction.add(e.transaction_id), account.add(e.account_id);
  decision.add(rules::to_string(verdict.decision)), score.add(std::int64_t{verdict.score});
  occurred.add(e.occurred_at);
  ++count;
}

void CaseColumns::insert(pqxx::work& tx) const {
  tx.exec_prepared("open_cases", source.str(), id.str(), transaction.str(), account.str(), decision.str(), score.str(),
                   occurred.str());
}

}  // namespace fraud::store
