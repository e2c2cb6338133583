#include "store/history.h"

#include <limits>
#include <pqxx/pqxx>
#include <set>

#include "events/record.h"
#include "postgres/connection.h"
#include "store/list_entries.h"

namespace fraud::store {
namespace {

// The replayed period: rows with since <= occurred_at < until ($1, $2 in microseconds).
constexpr const char* kPeriod =
    "t.occurred_at >= timestamptz 'epoch' + $1 * interval '1 microsecond' "
    "AND t.occurred_at < timestamptz 'epoch' + $2 * interval '1 microsecond'";

/// Streams the query's rows through a cursor, 10,000 at a time.
template <typename Visit>
void stream(pqxx::dbtransaction& tx, const std::string& cursor, const std::string& query, events::Timestamp since,
            events::Timestamp until, Visit&& visit) {
  tx.exec_params0("DECLARE " + cursor + " NO SCROLL CURSOR FOR " + query, since, until);
  for (;;) {
    auto rows = tx.exec("FETCH 10000 FROM " + cursor);
    if (rows.empty()) break;
    for (const auto& row : rows) visit(row);
  }
  tx.exec0("CLOSE " + cursor);
}

}  // namespace

std::string history_column(rules::KeyField field) { return std::string(rules::spec_of(field).column); }

std::string pair_kind_name(rules::KeyField a, rules::KeyField b) {
  return std::string(rules::to_string(a)) + "|" + rules::to_string(b);
}

std::string first_pairs_in_history(rules::KeyField a, rules::KeyField b, const std::string& condition) {
  auto ta = "t." + history_column(a), tb = "t." + history_column(b);
  return "SELECT DISTINCT ON (" + ta + ", " + tb + ") " + ta + " AS a, " + tb +
         " AS b, t.occurred_at, t.applied_seq FROM transactions t WHERE " + ta + " <> '' AND " + tb + " <> '' AND (" +
         condition + ") ORDER BY " + ta + ", " + tb + ", t.applied_seq NULLS FIRST, t.occurred_at, t.event_id";
}

void replay_stored_history(const std::string& postgres_url, events::Timestamp since, events::Timestamp until,
                           const StoredHistory& visit) {
  auto opened = postgres::connect(postgres_url);
  auto& c = *opened;
  // One snapshot for the pairs and the events, so the two agree.
  pqxx::transaction<pqxx::isolation_level::repeatable_read, pqxx::readwrite_policy::read_only> tx(c);
  if (visit.lists) visit.lists(read_list_entries(tx));
  // The pairs of the replayed events' keys, whenever they were recorded: whether a pair was new
  // to an event depends on which event recorded it, not on which events the replay includes.
  // A kind no live rule reads is not recorded (migrations/0023), or only partly: its pairs
  // come from the history itself, as a registration would backfill them, and a pair that
  // was recorded keeps its row (read second, it wins), as in a backfill.
  std::set<std::string> complete;
  for (const auto& row : tx.exec("SELECT pair_kind FROM first_seen_pair_kinds WHERE complete"))
    complete.insert(row[0].c_str());
  for (const auto& kind : visit.pair_kinds) {
    auto a = kind.first, b = kind.second;  // not a binding: clang 14 cannot capture one in the lambda below
    auto of_period = "SELECT t." + history_column(a) + " FROM transactions t WHERE " + std::string(kPeriod);
    auto to_visit = [&](const pqxx::row& row) {
      RecordedPair pair{a, b, row[0].c_str(), row[1].c_str(), std::nullopt, row[3].as<events::Timestamp>()};
      if (!row[2].is_null()) pair.first_seq = row[2].as<std::int64_t>();
      visit.pair_recorded(pair);
    };
    if (!complete.count(pair_kind_name(a, b)))
      stream(tx, "derived",
             "SELECT f.a, f.b, f.applied_seq, (extract(epoch FROM f.occurred_at) * 1000000)::bigint FROM (" +
                 first_pairs_in_history(a, b, "t." + history_column(a) + " IN (" + of_period + ")") + ") f",
             since, until, to_visit);
    stream(tx, "pairs",
           "SELECT p.first_key, p.second_key, p.first_seq, (extract(epoch FROM p.first_at) * 1000000)::bigint "
           "FROM first_seen_pairs p WHERE p.pair_kind = " +
               tx.quote(pair_kind_name(a, b)) + " AND p.first_key IN (" + of_period + ")",
           since, until, to_visit);
  }
  auto events =
      std::string(
          "SELECT t.event_source, t.body, l.is_fraud, t.decision, t.rule_set_version, t.applied_seq, "
          "t.lists_version, (extract(epoch FROM t.lists_at) * 1000000)::bigint, t.declined FROM transactions t "
          "LEFT JOIN "
          "transaction_labels l ON l.transaction_id = t.transaction_id "
          "WHERE ") +
      kPeriod + " ORDER BY t.applied_seq NULLS FIRST, t.occurred_at, t.event_id";
  events::Decoder decoder;
  stream(tx, "history", events, since, until, [&](const pqxx::row& row) {
    events::Record stored;
    stored.value = row[1].c_str();
    auto decoded = stored.decode(decoder);
    if (!decoded.event) return;
    decoded.event->source = row[0].c_str();
    decoded.event->declined = row[8].as<bool>();
    LabelledEvent item{std::move(*decoded.event), std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
    if (!row[2].is_null()) item.is_fraud = row[2].as<bool>();
    if (!row[3].is_null()) item.decision = row[3].c_str();
    if (!row[4].is_null()) item.rule_set_version = row[4].c_str();
    if (!row[5].is_null()) item.applied_seq = row[5].as<std::int64_t>();
    if (!row[6].is_null() && !row[7].is_null())
      item.lists_as_of = rules::ListsAsOf{row[6].as<std::int64_t>(), row[7].as<events::Timestamp>()};
    visit.event(item);
  });
}

}  // namespace fraud::store
