#pragma once
// The TransactionRecorded records tests produce or apply, and a history applied as the service would.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "consumer/batch_applier.h"
#include "rules/features.h"
#include "store/batch_store.h"
#include "tests/support/kafka.h"
#include "tests/support/services.h"

namespace fraud::testing {

/// The TransactionRecorded event number `i`, with `amount` in EUR, on account acc-(i % 37)
/// unless `account` is given, keyed by its account.
OutgoingRecord transaction_event(int i, const std::string& amount,
                                 const std::string& occurred_at = "2026-11-27T09:15:02.123Z",
                                 const std::string& account = "");

/// Event `i` of `account`, paid with `card`, occurring now (a runtime list's entry is in
/// force for the events that occur after it was added).
OutgoingRecord paid_now(int i, const std::string& account, const std::string& card, const std::string& amount);

/// Event `i` of `account` at `at` (RFC 3339) for `amount` EUR, from `device`, with `card`.
OutgoingRecord paid_from(int i, const std::string& account, const std::string& at, const std::string& device,
                         const std::string& card, const std::string& amount = "10.00");

/// The device tests' event `i`: card-i on acc-i, paying at 09:0i on 2026-11-27 from dev-1.
OutgoingRecord card_on_shared_device(int i);

/// A batch of partition 0 of topic "t": each record at its offset, decoded as the batch loop
/// decodes it, for tests that drive consumer::BatchApplier directly.
store::PartitionBatch partition_batch(std::int64_t epoch,
                                      const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records);

/// A fresh database, and a BatchApplier that applies batches of partition 0 of topic "t" under
/// tests/data/large_amount_rules.yaml (above 10,000 EUR: review), as the service would.
struct AppliedHistory {
  AppliedHistory();
  /// Applies `records` (offset, record) as one batch.
  void apply(const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records);

  Services services;
  TestDatabase db;
  rules::FeatureEngine engine;
  consumer::BatchApplier store;
  std::int64_t epoch;
};

}  // namespace fraud::testing
