#pragma once
// Feature values from history: windowed aggregates, time since the last event, speed from
// the previous location, first-seen pairs. Pure: the caller feeds it history (from the
// database in the service, from a replay in a backtest) and asks for the values of each new
// event, in event-time order per key.
//
// Semantics (event time throughout):
// - A windowed aggregate over W for an event at time t covers the key's events with
//   occurred_at in (t - W, t], the current event included, each filtered by the feature's
//   `where`. An event that arrives late is placed at its own time: it sees the history
//   before it, and it counts in the windows of events processed after it.
// - time_since_last and speed_kmh look at the latest earlier event of the key (occurred_at
//   <= t, the current event excluded) that satisfies `where`; missing when there is none.
//   speed_kmh also needs a location on both; a zero time difference counts as one second.
// - first_seen is true when the pair was never seen before this event.
// - distinct_count counts distinct values of a string field (compared by 64-bit hash);
//   events without the field are not counted.
// - A two-field key [a, b] on a windowed aggregate reads a's events whose b equals the
//   current event's b (compared by 64-bit hash); missing when the event lacks a or b.

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <absl/container/node_hash_map.h>
#include <absl/hash/hash.h>
#include <boost/container/small_vector.hpp>
#include <boost/smart_ptr/intrusive_ptr.hpp>

#include "events/event.h"
#include "rules/rule_set.h"

namespace fraud::rules {

/// A key whose history the engine lacks: load its events with occurred_at > `since`, and the
/// latest `latest_before` ones at or before `since` (for time_since_last and speed_kmh; more
/// than one when such a feature filters with `where`, since the latest event may not match).
struct HistoryRequest {
  KeyField field;
  std::string key;
  events::Timestamp since = 0;
  int latest_before = 0;
};

/// How far back before the windows a `where`-filtered time_since_last or speed_kmh looks
/// first when a key's history is loaded: the key's latest events this many deep (the loader
/// reads deeper while none is one the feature can read; lacks_latest()), up to
/// kMaxLatestDepth of them: past that, such a feature of the key is missing until the key
/// meets a matching event again, rather than a batch reading a key's whole history.
inline constexpr int kLatestDepth = 16;
inline constexpr int kMaxLatestDepth = 4096;

class FeatureEngine {
 public:
  explicit FeatureEngine(std::shared_ptr<const RuleSet> rules);
  /// Not copied: a copy would share its entries' counts, which are not atomic.
  FeatureEngine(const FeatureEngine&) = delete;
  FeatureEngine& operator=(const FeatureEngine&) = delete;
  FeatureEngine(FeatureEngine&&) = default;
  FeatureEngine& operator=(FeatureEngine&&) = default;

  const RuleSet& rules() const { return *rules_; }

  /// What must be loaded before `event` can be computed: keys whose history the engine does
  /// not hold. Marks them loaded, so the same key is asked for once.
  std::vector<HistoryRequest> requests_for(const events::Event& event);

  /// The keys `event` has for the fields features group by (empty keys left out).
  std::vector<std::pair<KeyField, std::string>> keys_of(const events::Event& event) const;

  /// Several replicas extend one key's history (a card on many accounts, a copy of an event
  /// applied on another partition). The database counts each key's committed batches; a batch
  /// that is about to extend `key` learns the count its own commit will make, `version`. A
  /// history that reflects exactly the one before it is current; any other is dropped, so
  /// that requests_for() loads it again with what the other replicas committed. Version 1
  /// means no batch extended the key before: its history is empty and nothing is loaded,
  /// when the field's versions are complete.
  /// `complete`: every key of the field with stored history has a version, so version 1
  /// means no history (migrations/0012); otherwise a first version loads like any other.
  void synchronise(KeyField field, const std::string& key, std::int64_t version, bool complete = true);

  /// The key fields the features group by (first_seen pairs aside), each once.
  const std::vector<KeyField>& key_fields() const { return fields_; }

  /// Adds a stored event to the history of `field`'s key (or of every key field when none is
  /// given), as loaded from the database or replayed.
  void remember(const events::Event& event, std::optional<KeyField> field = std::nullopt);

  /// The pairs (feature index, first member, second member) that `event` touches for its
  /// first_seen features, for the caller to check against everything seen before.
  std::vector<std::tuple<std::size_t, std::string, std::string>> pairs_of(const events::Event& event) const;

  /// Whether a time_since_last or speed_kmh feature of `field` has, in `key`'s history, no
  /// event at all that it could read (one that satisfies its `where`, with a location for
  /// speed): the loader then reads the key's older events deeper. (History keeps only the
  /// newest such event past the windows, so one held is the one the feature reads.)
  bool lacks_latest(KeyField field, const std::string& key) const;

  /// The (key, paired_with) fields of the first_seen features, each kind once.
  std::vector<std::pair<KeyField, KeyField>> first_seen_kinds() const;

  /// The values of every declared feature for `event`, as its decision sees them (the event
  /// itself included), without adding it to the history: add() does, once it is known whether
  /// the bank declined it. `new_pairs` tells, per entry of pairs_of(event), whether that pair
  /// is new; without it the engine decides from the pairs it has seen itself (a replay from the
  /// beginning).
  std::vector<Value> values_of(const events::Event& event, const std::vector<bool>* new_pairs = nullptr);

  /// Adds the event values_of() was given last to the history. `declined`: an authorisation
  /// the inline door blocked, which the bank declines; from now on it is an attempt. Counts,
  /// distinct counts, time_since_last and speed_kmh go on seeing it; sum, min, max and average
  /// leave its amount out; a `where` reads `declined` as true.
  void add(const events::Event& event, bool declined = false);

  /// values_of(), then add(event, event.declined).
  std::vector<Value> observe(const events::Event& event, const std::vector<bool>* new_pairs = nullptr);

  /// Forgets all history (after a rolled-back batch, a revoked partition or a reload).
  void forget();

  /// Forgets the histories of `event`'s keys only: after a rolled-back transaction that added
  /// it, when every event the transaction added is forgotten so, the histories left hold only
  /// what committed. The inline door rolls a group back whenever a caller gives up on a request
  /// in it; forgetting everything then made each later group load its keys again, and a door
  /// that fell behind once stayed behind (bench/decisions).
  void forget(const events::Event& event);

  /// Keys currently held, for bounding memory.
  std::size_t keys_held() const;

 private:
  /// What features need of one event, made once and shared by the histories of its keys.
  /// Compact, because one is held per event for the longest window (bench/run measures the
  /// replica's memory): amounts as 64-bit micros, and what the starter rules never need (an
  /// amount beyond 64 bits, a second hashed string) in a block of its own, made only for
  /// the events that need it.
  struct Spill {
    bool wide = false;  ///< the amounts are these, not the entry's 64-bit ones
    Decimal amount, amount_base;
    bool has_amount_base = false;
    std::vector<std::uint64_t> hash_rest;  ///< the hashes of slots 1, 2, …
  };
  struct Entry {
    static constexpr std::int64_t kNoAmount = std::numeric_limits<std::int64_t>::min();
    events::Timestamp at = 0;
    std::int64_t amount_micros = 0;
    std::int64_t amount_base_micros = kNoAmount;            ///< kNoAmount: missing
    double lat = std::numeric_limits<double>::quiet_NaN();  ///< NaN: no location
    double lon = std::numeric_limits<double>::quiet_NaN();
    std::uint64_t where_mask = 0;  ///< bit i: feature i's `where` holds
    /// Hashes of the string values features compare, one per HashSlot (0 when missing). The
    /// first is inline: most rule files have at most one.
    std::uint64_t hash_first = 0;
    std::unique_ptr<const Spill> spill;
    /// The histories holding it. Not atomic: an engine, and so its entries, belongs to one
    /// thread at a time.
    mutable std::uint32_t holders = 0;
    bool declined = false;  ///< an attempt the bank declined (FeatureEngine::add)

    bool wide() const { return spill && spill->wide; }
    Decimal amount() const { return wide() ? spill->amount : Decimal::from_micros(amount_micros); }
    bool has_amount_base() const { return wide() ? spill->has_amount_base : amount_base_micros != kNoAmount; }
    Decimal amount_base() const { return wide() ? spill->amount_base : Decimal::from_micros(amount_base_micros); }
    std::uint64_t hash(std::size_t slot) const { return slot == 0 ? hash_first : spill->hash_rest[slot - 1]; }

    friend void intrusive_ptr_add_ref(const Entry* e) { ++e->holders; }
    friend void intrusive_ptr_release(const Entry* e) {
      if (--e->holders == 0) delete e;
    }
  };
  using EntryRef = boost::intrusive_ptr<const Entry>;

  /// A time_since_last or speed_kmh feature: it reads the key's latest earlier event that
  /// satisfies its `where` (and, for speed, has a location), however old: history must keep
  /// that event even past every window, whatever the events after it.
  struct LatestNeed {
    std::uint64_t bit = 0;  ///< the feature's bit in Entry::where_mask
    bool needs_location = false;
    bool covered_by(const Entry& e) const { return (e.where_mask & bit) && (!needs_location || !std::isnan(e.lat)); }
  };

  /// One key's events, oldest first, by reference; 40 bytes, because a million keys each hold
  /// one: the one event most keys have in place, and the version and the loaded flag in one
  /// word (a version never reaches 2^62).
  using Entries = boost::container::small_vector<EntryRef, 1>;
  // Its implicit move assignment is not noexcept only because small_vector's is not: that
  // allocates when the target's capacity is below the source's size, and a moved-from
  // history's elements are either inline (one, within any capacity) or stolen whole.
  class History {  // NOLINT(bugprone-exception-escape)
   public:
    Entries entries;
    /// The key's committed batch count this history reflects.
    std::int64_t version() const { return state_ >> 1; }
    /// Whether its stored history was requested (requests_for).
    bool loaded() const { return state_ & 1; }
    void set(std::int64_t version, bool loaded) { state_ = version * 2 + (loaded ? 1 : 0); }
    /// Inserts in event-time order, then drops what no window of `keep` can reach, except
    /// the newest older entry each of `latest` can still need (see LatestNeed).
    void add(EntryRef entry, events::Timestamp keep, std::span<const LatestNeed> latest);

   private:
    std::int64_t state_ = 0;  ///< version and flag in one word
  };
  /// Keys by their text, hashed by absl with a seed that differs per process (std::hash has
  /// none, so producer-chosen keys could be made to collide in every replica). A node per key: a million keys in absl's
  /// flat table took about 20 MB more at peak (bench/keys, two runs each), its slots holding the key and the history
  /// and a third of them empty after it doubles, against a node each and an 8-byte slot.
  struct KeyHash {
    using is_transparent = void;  // looked up by string_view, copied only when inserted
    std::size_t operator()(std::string_view key) const { return absl::Hash<std::string_view>{}(key); }
  };
  using Histories = absl::node_hash_map<std::string, History, KeyHash, std::equal_to<>>;

  EntryRef entry_of(const events::Event& event) const;
  std::uint64_t where_mask_of(const events::Event& event, const Value& amount_base) const;
  Value compute(const FeatureSpec& spec, std::size_t index, const History& history, const Entry& current) const;

  std::shared_ptr<const RuleSet> rules_;
  std::vector<KeyField> fields_;                   ///< key fields any feature groups by
  std::vector<events::Timestamp> longest_window_;  ///< per entry of fields_
  std::vector<int> needs_latest_;                  ///< per entry of fields_: how many events before the windows
  std::vector<std::vector<LatestNeed>> latest_;    ///< per entry of fields_: its latest-event features
  std::vector<Histories> histories_;               ///< per entry of fields_
  /// A string an entry keeps a hash of: a distinct_count feature's field, or the second
  /// field of a windowed feature's two-field key (one slot per such key field).
  struct HashSlot {
    std::optional<Expression> field;
    std::optional<KeyField> key;
  };
  static constexpr std::size_t kNoSlot = static_cast<std::size_t>(-1);
  std::size_t slot_of(std::optional<Expression> field, std::optional<KeyField> key);

  std::vector<HashSlot> slots_;
  std::vector<std::size_t> distinct_slot_;  ///< per feature: the slot of its distinct_count field, or kNoSlot
  std::vector<std::size_t> pair_slot_;      ///< per feature: the slot of its key's second field, or kNoSlot
  std::set<std::tuple<std::size_t, std::string, std::string>> seen_pairs_;
  /// What values_of() made of an event, for add(): its entry, and the pairs a replay records.
  struct Pending {
    EntryRef entry;
    std::vector<std::tuple<std::size_t, std::string, std::string>> pairs;
  };
  std::optional<Pending> pending_;
};

}  // namespace fraud::rules
