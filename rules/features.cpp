#include "rules/features.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>

namespace fraud::rules {
namespace {

constexpr events::Timestamp kLateness = 3'600'000'000LL;  // an hour of out-of-order arrival kept in memory

double haversine_km(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kEarthKm = 6371.0088, kRad = 3.14159265358979323846 / 180;
  double dlat = (lat2 - lat1) * kRad, dlon = (lon2 - lon1) * kRad;
  double a = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthKm * std::asin(std::min(1.0, std::sqrt(a)));
}

}  // namespace

void FeatureEngine::History::add(EntryRef entry, events::Timestamp keep, std::span<const LatestNeed> latest) {
  auto at = std::upper_bound(entries.begin(), entries.end(), entry->at,
                             [](events::Timestamp t, const EntryRef& e) { return t < e->at; });
  entries.insert(at, std::move(entry));
  // Everything the longest window reaches stays. Of what is older, an entry stays while it
  // is the newest one that some latest-event feature can still read: one that no newer
  // entry satisfies (a card-present payment before a run of online ones, for a card-present
  // speed). Walking from the newest, `unmet` holds the features no entry seen has satisfied.
  auto cut = entries.back()->at - keep;
  std::vector<bool> unmet(latest.size(), true);
  auto kept = entries.end();
  for (auto it = entries.end(); it != entries.begin();) {
    --it;
    bool needed = (*it)->at >= cut;
    for (std::size_t n = 0; n < latest.size(); ++n)
      if (unmet[n] && latest[n].covered_by(**it)) unmet[n] = false, needed = true;
    if (!needed) continue;
    if (--kept != it) *kept = std::move(*it);
  }
  entries.erase(entries.begin(), kept);
}

FeatureEngine::FeatureEngine(std::shared_ptr<const RuleSet> rules) : rules_(std::move(rules)) {
  const auto& specs = rules_->features();
  for (const auto& spec : specs) {
    if (spec.aggregate == Aggregate::first_seen) continue;
    auto it = std::find(fields_.begin(), fields_.end(), spec.key);
    if (it == fields_.end()) {
      fields_.push_back(spec.key);
      longest_window_.push_back(0);
      needs_latest_.push_back(0);
      it = fields_.end() - 1;
    }
    auto i = static_cast<std::size_t>(it - fields_.begin());
    longest_window_[i] = std::max(longest_window_[i], spec.window_us);
    if (!windowed(spec.aggregate)) needs_latest_[i] = std::max(needs_latest_[i], spec.where ? kLatestDepth : 1);
  }
  histories_.resize(fields_.size());
  latest_.resize(fields_.size());
  for (std::size_t j = 0; j < specs.size(); ++j) {
    if (windowed(specs[j].aggregate) || specs[j].aggregate == Aggregate::first_seen) continue;
    auto i = static_cast<std::size_t>(std::find(fields_.begin(), fields_.end(), specs[j].key) - fields_.begin());
    latest_[i].push_back({std::uint64_t{1} << j, specs[j].aggregate == Aggregate::speed_kmh});
  }
  for (const auto& spec : specs) {
    distinct_slot_.push_back(spec.aggregate == Aggregate::distinct_count
                                 ? slot_of(Expression::compile(spec.field, {}), std::nullopt)
                                 : kNoSlot);
    pair_slot_.push_back(spec.paired_with && windowed(spec.aggregate) ? slot_of(std::nullopt, spec.paired_with)
                                                                      : kNoSlot);
  }
}

std::size_t FeatureEngine::slot_of(std::optional<Expression> field, std::optional<KeyField> key) {
  if (key)  // features sharing a second key field share its hash
    for (std::size_t s = 0; s < slots_.size(); ++s)
      if (slots_[s].key == key) return s;
  slots_.push_back({std::move(field), key});
  return slots_.size() - 1;
}

std::vector<HistoryRequest> FeatureEngine::requests_for(const events::Event& event) {
  std::vector<HistoryRequest> requests;
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    auto key = key_of(event, fields_[i]);
    if (key.empty()) continue;
    auto& history = histories_[i][key];
    if (history.loaded()) continue;
    history.set(history.version(), true);
    requests.push_back(
        {fields_[i], std::string(key), event.occurred_at - longest_window_[i] - kLateness, needs_latest_[i]});
  }
  return requests;
}

std::vector<std::pair<KeyField, std::string>> FeatureEngine::keys_of(const events::Event& event) const {
  std::vector<std::pair<KeyField, std::string>> keys;
  for (auto field : fields_)
    if (auto key = key_of(event, field); !key.empty()) keys.emplace_back(field, std::string(key));
  return keys;
}

void FeatureEngine::synchronise(KeyField field, const std::string& key, std::int64_t version, bool complete) {
  auto i = static_cast<std::size_t>(std::find(fields_.begin(), fields_.end(), field) - fields_.begin());
  if (i == fields_.size()) return;
  auto& history = histories_[i][key];
  if (!history.loaded() || history.version() != version - 1) {
    history = History{};  // stale or new: load it…
    // …unless no batch extended the key before this one: then nothing is stored to load
    // (when every key of the field with stored history has a version: migrations/0012).
    history.set(version, version == 1 && complete);
  } else {
    history.set(version, true);
  }
}

std::uint64_t FeatureEngine::where_mask_of(const events::Event& event, const Value& amount_base) const {
  EvalContext context{event, amount_base, {}};
  const auto& specs = rules_->features();
  std::uint64_t mask = 0;
  for (std::size_t i = 0; i < specs.size(); ++i)
    if (!specs[i].where || specs[i].where->holds(context)) mask |= std::uint64_t{1} << i;
  return mask;
}

FeatureEngine::EntryRef FeatureEngine::entry_of(const events::Event& event) const {
  auto made = std::make_unique<Entry>();
  auto& entry = *made;
  entry.at = event.occurred_at;
  auto amount = Decimal::from_money(event.amount);
  auto base = rules_->amount_base(event);
  auto fits = [](Decimal d) {  // kNoAmount itself is kept wide, so it never reads as missing
    return d.micros() > Entry::kNoAmount && d.micros() <= std::numeric_limits<std::int64_t>::max();
  };
  Spill spill;
  if (fits(amount) && (base.is_missing() || fits(base.number))) {
    entry.amount_micros = static_cast<std::int64_t>(amount.micros());
    if (!base.is_missing()) entry.amount_base_micros = static_cast<std::int64_t>(base.number.micros());
  } else {
    spill.wide = true, spill.amount = amount, spill.has_amount_base = !base.is_missing();
    if (spill.has_amount_base) spill.amount_base = base.number;
  }
  if (event.location.lat && event.location.lon) entry.lat = *event.location.lat, entry.lon = *event.location.lon;
  entry.declined = event.declined;
  entry.where_mask = where_mask_of(event, base);
  EvalContext context{event, base, {}};
  auto hash_of = [](std::string_view text) { return std::hash<std::string_view>{}(text) | 1; };  // 0 is missing
  for (std::size_t s = 0; s < slots_.size(); ++s) {
    std::uint64_t hash = 0;
    if (slots_[s].key) {
      if (auto key = key_of(event, *slots_[s].key); !key.empty()) hash = hash_of(key);
    } else if (auto v = slots_[s].field->evaluate(context); v.kind == Value::Kind::string) {
      hash = hash_of(v.string);
    }
    if (s == 0) entry.hash_first = hash;
    else spill.hash_rest.push_back(hash);
  }
  if (spill.wide || !spill.hash_rest.empty()) entry.spill = std::make_unique<const Spill>(std::move(spill));
  return EntryRef(made.release());
}

void FeatureEngine::remember(const events::Event& event, std::optional<KeyField> field) {
  auto entry = entry_of(event);
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (field && fields_[i] != *field) continue;
    auto key = key_of(event, fields_[i]);
    if (!key.empty()) histories_[i][key].add(entry, longest_window_[i] + kLateness, latest_[i]);
  }
}

std::vector<std::tuple<std::size_t, std::string, std::string>> FeatureEngine::pairs_of(
    const events::Event& event) const {
  std::vector<std::tuple<std::size_t, std::string, std::string>> pairs;
  const auto& specs = rules_->features();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].aggregate != Aggregate::first_seen) continue;
    auto a = key_of(event, specs[i].key), b = key_of(event, *specs[i].paired_with);
    if (!a.empty() && !b.empty()) pairs.emplace_back(i, std::string(a), std::string(b));
  }
  return pairs;
}

bool FeatureEngine::lacks_latest(KeyField field, const std::string& key) const {
  auto i = static_cast<std::size_t>(std::find(fields_.begin(), fields_.end(), field) - fields_.begin());
  if (i == fields_.size()) return false;
  auto found = histories_[i].find(key);
  for (const auto& need : latest_[i]) {
    bool covered =
        found != histories_[i].end() && std::any_of(found->second.entries.begin(), found->second.entries.end(),
                                                    [&](const EntryRef& e) { return need.covered_by(*e); });
    if (!covered) return true;
  }
  return false;
}

std::vector<std::pair<KeyField, KeyField>> FeatureEngine::first_seen_kinds() const {
  std::vector<std::pair<KeyField, KeyField>> kinds;
  for (const auto& spec : rules_->features())
    if (spec.aggregate == Aggregate::first_seen &&
        std::find(kinds.begin(), kinds.end(), std::make_pair(spec.key, *spec.paired_with)) == kinds.end())
      kinds.emplace_back(spec.key, *spec.paired_with);
  return kinds;
}

std::vector<Value> FeatureEngine::values_of(const events::Event& event, const std::vector<bool>* new_pairs) {
  const auto& specs = rules_->features();
  auto entry = entry_of(event);
  std::vector<Value> values(specs.size());
  auto pairs = pairs_of(event);
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    bool fresh = new_pairs ? (p < new_pairs->size() && (*new_pairs)[p]) : !seen_pairs_.count(pairs[p]);
    values[std::get<0>(pairs[p])] = Value::of(fresh);
  }
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].aggregate == Aggregate::first_seen) continue;
    auto key = key_of(event, specs[i].key);
    if (key.empty() || (specs[i].paired_with && key_of(event, *specs[i].paired_with).empty())) continue;
    auto field = static_cast<std::size_t>(std::find(fields_.begin(), fields_.end(), specs[i].key) - fields_.begin());
    values[i] = compute(specs[i], i, histories_[field][key], *entry);
  }
  pending_ = Pending{std::move(entry), new_pairs ? decltype(pairs){} : std::move(pairs)};
  return values;
}

void FeatureEngine::add(const events::Event& event, bool declined) {
  if (!pending_) throw std::logic_error("FeatureEngine::add: values_of() first");
  auto entry = std::move(pending_->entry);
  if (declined && !entry->declined) {  // an attempt from now on: its `where` filters see it so
    auto attempt = event;
    attempt.declined = true;
    entry = entry_of(attempt);
  }
  // Added in its final shape: History::add keeps or drops older entries by what this one covers.
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    auto key = key_of(event, fields_[i]);
    if (!key.empty()) histories_[i][key].add(entry, longest_window_[i] + kLateness, latest_[i]);
  }
  // A replay keeps its own record of pairs; the service asks the database.
  for (auto& pair : pending_->pairs) seen_pairs_.insert(std::move(pair));
  pending_.reset();
}

std::vector<Value> FeatureEngine::observe(const events::Event& event, const std::vector<bool>* new_pairs) {
  auto values = values_of(event, new_pairs);
  add(event, event.declined);
  return values;
}

Value FeatureEngine::compute(const FeatureSpec& spec, std::size_t index, const History& history,
                             const Entry& current) const {
  auto bit = std::uint64_t{1} << index;
  // History at or before the current event, newest first.
  auto end = std::upper_bound(history.entries.begin(), history.entries.end(), current.at,
                              [](events::Timestamp t, const EntryRef& e) { return t < e->at; });
  auto earlier = std::make_reverse_iterator(end);
  auto oldest = std::make_reverse_iterator(history.entries.begin());

  if (spec.aggregate == Aggregate::time_since_last || spec.aggregate == Aggregate::speed_kmh) {
    for (auto it = earlier; it != oldest; ++it) {
      const auto& e = **it;
      if (!(e.where_mask & bit)) continue;
      auto dt = current.at - e.at;
      if (spec.aggregate == Aggregate::time_since_last) return Value::of(Decimal::from_micros(dt));  // seconds
      if (std::isnan(e.lat)) continue;
      if (std::isnan(current.lat)) return {};
      double km = haversine_km(e.lat, e.lon, current.lat, current.lon);
      if (km < spec.min_km) return Value::of(Decimal());  // within coordinate noise: no travel
      double hours = static_cast<double>(std::max<events::Timestamp>(dt, spec.min_interval_us)) / 3.6e9;
      auto speed = Decimal::from_double(km / hours);
      return speed ? Value::of(*speed) : Value{};
    }
    return {};
  }

  // Windowed: (t - W, t], the current event included.
  std::int64_t count = 0;
  Decimal sum, low, high;
  std::vector<std::uint64_t> seen;
  bool in_base = spec.field != "amount";
  auto slot = distinct_slot_[index], pair = pair_slot_[index];
  auto take = [&](const Entry& e) {
    if (!(e.where_mask & bit)) return;
    if (pair != kNoSlot && e.hash(pair) != current.hash(pair)) return;  // another merchant, payee, …
    if (spec.aggregate == Aggregate::distinct_count) {
      if (auto hash = e.hash(slot); hash != 0) seen.push_back(hash);
      return;
    }
    if (spec.aggregate == Aggregate::count) return void(++count);
    if (e.declined) return;  // an attempt the bank declined: its money never moved
    if (in_base && !e.has_amount_base()) return;
    auto v = in_base ? e.amount_base() : e.amount();
    low = count == 0 ? v : std::min(low, v);
    high = count == 0 ? v : std::max(high, v);
    sum = sum + v;
    ++count;
  };
  take(current);
  for (auto it = earlier; it != oldest && (*it)->at > current.at - spec.window_us; ++it) take(**it);

  switch (spec.aggregate) {
    case Aggregate::count: return Value::of(Decimal::from_int(count));
    case Aggregate::sum: return Value::of(sum);
    case Aggregate::min: return count ? Value::of(low) : Value{};
    case Aggregate::max: return count ? Value::of(high) : Value{};
    case Aggregate::average: return count ? Value::of(sum / Decimal::from_int(count)) : Value{};
    case Aggregate::distinct_count:
      std::sort(seen.begin(), seen.end());
      return Value::of(Decimal::from_int(std::unique(seen.begin(), seen.end()) - seen.begin()));
    default: return {};
  }
}

void FeatureEngine::forget() {
  pending_.reset();
  for (auto& h : histories_) h.clear();
  seen_pairs_.clear();
}

void FeatureEngine::forget(const events::Event& event) {
  pending_.reset();
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (auto key = key_of(event, fields_[i]); !key.empty()) histories_[i].erase(key);
}

std::size_t FeatureEngine::keys_held() const {
  std::size_t n = 0;
  for (const auto& h : histories_) n += h.size();
  return n;
}

}  // namespace fraud::rules
