#pragma once
// The first-seen pairs of a batch's new events (first_seen features: this account's first
// payment to this payee, on this device, at this merchant), claimed in the batch's
// transaction. Only the kinds some replica's rules registered are recorded (migrations/0023).
// Internal to the store module.

#include <pqxx/pqxx>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "events/event.h"
#include "rules/features.h"

namespace fraud::store {

class FirstSeenPairs {
 public:
  /// Makes sure every batch from now on, on any replica, records the pair kinds `engine`'s
  /// first_seen features read, each complete: a kind not registered before is backfilled
  /// from the history first (migrations/0023), while batches go on but for a moment in which
  /// it waits for the batches in flight and holds new ones back (lock_timeout). Calls
  /// `progress` after each chunk of a backfill.
  void register_kinds(pqxx::connection& connection, const rules::FeatureEngine& engine,
                      const std::function<void()>& progress);

  /// The kinds every batch records, whichever replica registered them: read in the batch's
  /// transaction after it took the dedup gate, so a registration that marked one before is
  /// seen. Its pair_kind column goes to claim().
  static constexpr const char* kMaintainedKinds = "SELECT pair_kind FROM first_seen_pair_kinds WHERE maintained";

  /// Records the pairs of the batch's new events, of every registered kind (`maintained`: what
  /// kMaintainedKinds read in `tx`); returns, per
  /// event, which of its first_seen features' pairs are new (the first claim in the batch
  /// wins). Pairs known to exist are not sent. A hash collision would make one new pair look
  /// known: with 64 bits and at most a million known pairs, about one chance in 10^13 per pair.
  /// Throws DatabaseError when a kind `engine` reads is not maintained any more (a database
  /// restored from before its registration): the next batch registers it again.
  std::vector<std::vector<bool>> claim(pqxx::work& tx, const rules::FeatureEngine& engine,
                                       const std::vector<const events::Event*>& applied, std::int64_t applied_batch,
                                       const std::vector<std::string>& maintained);

  /// The transaction of the last claim committed: its pairs are known from now on.
  void committed();

 private:
  /// Hashes of pairs known to be in first_seen_pairs (committed; rows there are never
  /// removed), so a batch sends only pairs it has not seen: habitual customers repeat their
  /// devices and merchants, and that insert was a quarter of PostgreSQL's time (bench/run).
  std::unordered_set<std::uint64_t> known_;
  std::vector<std::uint64_t> sent_;  ///< by the last claim
  /// Kinds this replica registered, or found registered: they stay registered.
  std::set<std::pair<rules::KeyField, rules::KeyField>> registered_;
};

}  // namespace fraud::store
