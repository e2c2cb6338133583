#include "dedup/history.h"

#include <pqxx/pqxx>

#include "events/record.h"

namespace fraud::dedup {

void for_each_stored_event(const std::string& postgres_url, events::Timestamp since, events::Timestamp until,
                           const std::function<void(const LabelledEvent&)>& visit) {
  pqxx::connection c(postgres_url);
  pqxx::read_transaction tx(c);
  tx.exec_params0(
      "DECLARE history NO SCROLL CURSOR FOR "
      "SELECT t.event_source, t.body, l.is_fraud FROM transactions t "
      "LEFT JOIN fraud_labels l ON l.transaction_id = t.transaction_id "
      "WHERE t.occurred_at >= timestamptz 'epoch' + $1 * interval '1 microsecond' "
      "AND t.occurred_at < timestamptz 'epoch' + $2 * interval '1 microsecond' "
      "ORDER BY t.occurred_at, t.event_id",
      since, until);
  events::Decoder decoder;
  for (;;) {
    auto rows = tx.exec("FETCH 10000 FROM history");
    if (rows.empty()) break;
    for (const auto& row : rows) {
      events::Record stored;
      stored.value = row[1].c_str();
      auto decoded = stored.decode(decoder);
      if (!decoded.event) continue;
      decoded.event->source = row[0].c_str();
      LabelledEvent item{std::move(*decoded.event), std::nullopt};
      if (!row[2].is_null()) item.is_fraud = row[2].as<bool>();
      visit(item);
    }
  }
}

}  // namespace fraud::dedup
