#include "tests/support/records.h"

#include <cstdio>

#include "events/decode.h"
#include "events/record.h"
#include "events/time.h"

namespace fraud::testing {

OutgoingRecord paid_now(int i, const std::string& account, const std::string& card, const std::string& amount) {
  auto record = transaction_event(i, amount, events::format_rfc3339(events::wall_clock_now()), account);
  record.value.insert(record.value.rfind('}'), ",\"card\":{\"fingerprint\":\"" + card + "\"}");
  return record;
}

OutgoingRecord paid_from(int i, const std::string& account, const std::string& at, const std::string& device,
                         const std::string& card, const std::string& amount) {
  auto record = transaction_event(i, amount, at, account);
  record.value.insert(record.value.rfind('}'),
                      R"(,"device":{"id":")" + device + R"("},"card":{"fingerprint":")" + card + "\"}");
  return record;
}

OutgoingRecord card_on_shared_device(int i) {
  char when[32];
  std::snprintf(when, sizeof when, "2026-11-27T09:%02d:00Z", i);
  return paid_from(i, "acc-" + std::to_string(i), when, "dev-1", "card-" + std::to_string(i));
}

OutgoingRecord transaction_event(int i, const std::string& amount, const std::string& occurred_at,
                                 const std::string& account_id) {
  std::string n = std::to_string(i), account = account_id.empty() ? "acc-" + std::to_string(i % 37) : account_id;
  std::string value = R"({"event_id":"evt-)" + n + R"(","event_type":"TransactionRecorded","schema_version":1,)" +
                      R"("occurred_at":")" + occurred_at + R"(","recorded_at":"2026-11-27T09:15:02.140Z",)" +
                      R"("transaction_id":"txn-)" + n + R"(","account_id":")" + account + R"(",)" +
                      R"("kind":"purchase","direction":"debit","amount":{"value":")" + amount +
                      R"(","currency":"EUR"},"channel":"card_not_present"})";
  return {account, value, {}};
}

store::PartitionBatch partition_batch(std::int64_t epoch,
                                      const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records) {
  store::PartitionBatch batch{"t", 0, epoch, {}};
  events::Decoder decoder;
  for (const auto& [offset, out] : records) {
    events::Record record{"t", 0, offset, 0, out.key, {}, out.value};
    for (const auto& [name, value] : out.headers) record.headers.emplace_back(name, value);
    auto decoded = record.decode(decoder);
    batch.records.push_back({record, decoded.event, decoded.error});
  }
  return batch;
}

AppliedHistory::AppliedHistory()
    : services(Services::from_environment()), db(services),
      engine(std::make_shared<const rules::RuleSet>(
          rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"))),
      store(db.service_url(), "g", "test", {}), epoch(store.claim("t", 0).epoch) {}

void AppliedHistory::apply(const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records) {
  store.apply(partition_batch(epoch, records), engine);
}

}  // namespace fraud::testing
