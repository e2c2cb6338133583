#include "store/feature_history.h"

#include <algorithm>
#include <set>
#include <string>

#include "events/time.h"
#include "postgres/array_literal.h"
#include "store/history.h"

namespace fraud::store {
namespace {

// Per key, its events at or before a time, newest first: `limit` of them after skipping `offset`.
std::string older_history_query(rules::KeyField field, int limit, int offset) {
  std::string c = history_column(field);
  return "SELECT latest.event_source, latest.body, latest.declined FROM unnest($1::text[]) AS k(key) "
         "CROSS JOIN LATERAL (SELECT event_source, body, declined FROM transactions WHERE " +
         c +
         " = k.key AND "
         "occurred_at <= $2::timestamptz ORDER BY occurred_at DESC, event_id DESC LIMIT " +
         std::to_string(limit) + " OFFSET " + std::to_string(offset) + ") latest";
}

// A key's events since a time, and its latest `latest_before` ones before (time since last,
// speed; more than one when their `where` may skip the latest). The column comes from the
// fixed table of rules/key_field.h, never from input. The time is a timestamptz parameter so that
// PostgreSQL prunes day partitions while planning (an expression on it would be pruned only
// after every partition was locked); the latest events before it are a LIMIT per key, which
// an ordered scan over the newest partitions answers early.
std::string history_query(rules::KeyField field, int latest_before) {
  std::string c = history_column(field);
  std::string since = "SELECT event_source, body, declined FROM transactions WHERE " + c +
                      " = ANY($1::text[]) AND occurred_at > "
                      "$2::timestamptz";
  if (!latest_before) return since;
  return since + " UNION ALL " + older_history_query(field, latest_before, 0);
}

}  // namespace

void synchronise_keys(pqxx::work& tx, rules::FeatureEngine& features, const std::vector<const events::Event*>& applied,
                      const std::map<rules::KeyField, bool>& versions_complete) {
  // Every key field, not only those of this replica's rules: the statement keeps the ones
  // any replica registered (a rollout or a reload can run other rule files side by side).
  std::set<std::pair<rules::KeyField, std::string>> keys;
  for (const auto* e : applied)
    for (const auto& spec : rules::kKeyFieldSpecs)
      if (auto key = spec.read(*e); !key.empty()) keys.emplace(spec.field, std::string(key));
  if (keys.empty()) return;
  postgres::ArrayLiteral fields, values;
  std::map<std::string, rules::KeyField, std::less<>> field_named;
  for (const auto& [field, key] : keys) {
    fields.add(rules::to_string(field)), values.add(key);
    field_named.emplace(rules::to_string(field), field);
  }
  for (const auto& row : tx.exec_prepared("key_versions", fields.str(), values.str())) {
    auto field = field_named.at(row[0].c_str());
    auto complete = versions_complete.find(field);
    features.synchronise(field, row[1].c_str(), row[2].as<std::int64_t>(),
                         complete != versions_complete.end() && complete->second);
  }
}

void load_history(pqxx::work& tx, rules::FeatureEngine& features, const std::vector<const events::Event*>& applied,
                  events::Decoder& decoder) {
  struct Wanted {
    postgres::ArrayLiteral keys;
    events::Timestamp since;
    int latest_before = 0;
  };
  std::map<rules::KeyField, Wanted> wanted;
  for (const auto* e : applied)
    for (const auto& request : features.requests_for(*e)) {
      auto [it, inserted] = wanted.try_emplace(request.field, Wanted{{}, request.since});
      it->second.keys.add(request.key);
      it->second.since = std::min(it->second.since, request.since);
      it->second.latest_before = std::max(it->second.latest_before, request.latest_before);
    }
  for (const auto& entry : wanted) {
    auto field = entry.first;  // not a structured binding: the lambdas below capture it
    const auto& w = entry.second;
    auto since = events::format_rfc3339(w.since);
    std::map<std::string, int> older;  // per key: the events of the last query at or before `since`
    auto remember = [&](const pqxx::result& rows) {
      older.clear();
      for (const auto& row : rows) {
        events::Record stored;
        stored.value = row[1].c_str();
        auto decoded = stored.decode(decoder);
        if (!decoded.event) continue;  // written by this service; cannot happen short of tampering
        decoded.event->source = row[0].c_str();
        decoded.event->declined = row[2].as<bool>();
        if (decoded.event->occurred_at <= w.since) ++older[std::string(rules::key_of(*decoded.event, field))];
        features.remember(*decoded.event, field);
      }
    };
    remember(tx.exec_params(history_query(field, w.latest_before), w.keys.str(), since));
    // A time_since_last or speed_kmh reads the key's latest event that satisfies its `where`
    // (and has a location, for speed), however old, as one process holding the key all along
    // would. When the events read hold none, read on, twice as deep each time, while the key
    // has more, up to rules::kMaxLatestDepth events. The pages are consistent: this batch
    // holds the key's version lock, so no other replica commits events of the key meanwhile.
    for (int offset = 0, page = w.latest_before; page > 0;) {  // `page`: as many as the last query asked for
      postgres::ArrayLiteral deeper;
      std::size_t count = 0;
      for (const auto& [key, n] : older) {
        if (n < page || !features.lacks_latest(field, key)) continue;  // found, or no more
        deeper.add(key);
        ++count;
      }
      if (count == 0 || offset + page >= rules::kMaxLatestDepth) break;
      offset += page;
      page = offset;
      remember(tx.exec_params(older_history_query(field, page, offset), deeper.str(), since));
    }
  }
}

}  // namespace fraud::store
