#include "rules/backtest.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace fraud::rules {
namespace {

std::string ratio(const std::optional<double>& value) {
  if (!value) return "-";
  char out[16];
  std::snprintf(out, sizeof out, "%.3f", *value);
  return out;
}

std::string row(const std::string& name, const std::string& a, const std::string& b, const std::string& c,
                const std::string& d, const std::string& e, const std::string& f = "", const std::string& g = "",
                const std::string& h = "") {
  char out[320];
  std::snprintf(out, sizeof out, "%-28s %10s %10s %10s %10s %10s %14s %14s %8s\n", name.c_str(), a.c_str(), b.c_str(),
                c.c_str(), d.c_str(), e.c_str(), f.c_str(), g.c_str(), h.c_str());
  return out;
}

/// An amount in whole units of the base currency, for the report.
std::string money(Decimal amount) {
  char out[32];
  std::snprintf(out, sizeof out, "%.0f", amount.to_double());
  return out;
}

}  // namespace

std::optional<double> RuleScore::precision() const {
  auto labelled = fraud_hits + legitimate_hits;
  if (labelled == 0) return std::nullopt;
  return static_cast<double>(fraud_hits) / static_cast<double>(labelled);
}

std::optional<double> RuleScore::recall(std::uint64_t fraud_total) const {
  if (fraud_total == 0) return std::nullopt;
  return static_cast<double>(fraud_hits) / static_cast<double>(fraud_total);
}

Backtest::Backtest(std::shared_ptr<const RuleSet> candidate, std::shared_ptr<const RuleSet> active)
    : candidate_(std::move(candidate)), active_(std::move(active)) {
  for (const auto& rule : candidate_.rules().rules()) candidate_rules_[rule.id];
  for (const auto& rule : active_.rules().rules()) active_rules_[rule.id];
}

std::vector<bool> Backtest::new_pairs(const FeatureEngine& engine, std::set<PairKey>& seen, const events::Event& event,
                                      std::optional<std::int64_t> applied_seq) const {
  std::vector<bool> flags;
  const auto& specs = engine.rules().features();
  for (const auto& [index, a, b] : engine.pairs_of(event)) {
    PairKey key{specs[index].key, *specs[index].paired_with, a, b};
    auto found = recorded_.find(key);
    bool fresh;
    if (found != recorded_.end() && found->second.first_seq && applied_seq)
      fresh = *found->second.first_seq == *applied_seq;  // exactly when this event recorded it
    else if (found != recorded_.end() && !found->second.first_seq && found->second.first_at < event.occurred_at)
      fresh = false;  // recorded before 0011, before this event
    else fresh = !seen.count(key);
    seen.insert(std::move(key));
    flags.push_back(fresh);
  }
  return flags;
}

Decision Backtest::score(FeatureEngine& engine, std::set<PairKey>& seen, const events::Event& event,
                         std::optional<bool> is_fraud, bool counted, std::map<std::string, RuleScore>& rules,
                         RuleScore& flagged, std::optional<std::int64_t> applied_seq,
                         const std::optional<ListsAsOf>& as_of) {
  auto flags = new_pairs(engine, seen, event, applied_seq);
  // A declined attempt was decided before it was declined (FeatureEngine::add): so is its replay.
  const auto* deciding = &event;
  events::Event undeclined;
  if (event.declined) undeclined = event, undeclined.declined = false, deciding = &undeclined;
  auto verdict = engine.rules().evaluate(*deciding, engine.values_of(*deciding, &flags), &lists_, as_of);
  engine.add(*deciding, event.declined);
  if (!counted) return verdict.decision;
  auto amount = engine.rules().amount_base(event);
  auto tally = [&](RuleScore& s) {
    ++s.hits;
    if (!is_fraud) return;
    ++(*is_fraud ? s.fraud_hits : s.legitimate_hits);
    if (amount.kind != Value::Kind::number) return;
    auto& total = *is_fraud ? s.fraud_amount : s.legitimate_amount;
    total = Decimal::checked_add(total, amount.number).value_or(total);  // saturates rather than wraps
  };
  for (const auto& hit : verdict.hits) tally(rules[hit.rule_id]);
  if (verdict.decision != Decision::allow) tally(flagged);
  return verdict.decision;
}

std::vector<std::pair<KeyField, KeyField>> Backtest::first_seen_kinds() const {
  auto kinds = candidate_.first_seen_kinds();
  for (const auto& kind : active_.first_seen_kinds())
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  return kinds;
}

void Backtest::recorded_pair(KeyField a, KeyField b, const std::string& first, const std::string& second,
                             std::optional<std::int64_t> first_seq, events::Timestamp first_at) {
  recorded_[{a, b, first, second}] = {first_seq, first_at};
}

void Backtest::feed(const events::Event& event, std::optional<bool> is_fraud, bool counted,
                    const std::optional<StoredDecision>& stored, std::optional<std::int64_t> applied_seq,
                    const std::optional<ListsAsOf>& as_of) {
  auto candidate = score(candidate_, candidate_seen_, event, is_fraud, counted, candidate_rules_, candidate_flagged_,
                         applied_seq, as_of);
  auto active =
      score(active_, active_seen_, event, is_fraud, counted, active_rules_, active_flagged_, applied_seq, as_of);
  if (!counted) return void(++warmup_events_);
  first_at_ = events_ == 0 ? event.occurred_at : std::min(first_at_, event.occurred_at);
  last_at_ = events_ == 0 ? event.occurred_at : std::max(last_at_, event.occurred_at);
  ++events_;
  if (stored && stored->rule_set_version == active_.rules().version()) {
    ++compared_;
    if (stored->decision != to_string(active)) {
      ++not_reproduced_;
      if (not_reproduced_ids_.size() < 10) not_reproduced_ids_.push_back(event.event_id);
    }
  }
  if (is_fraud) ++(*is_fraud ? fraud_total_ : legitimate_total_);
  if (candidate != active) ++changes_[{active, candidate}];
}

std::uint64_t Backtest::decisions_changed() const {
  std::uint64_t n = 0;
  for (const auto& [change, count] : changes_) n += count;
  return n;
}

void Backtest::report(std::ostream& out) const {
  out << "candidate rules  " << candidate_.rules().version() << "\n"
      << "active rules     " << active_.rules().version() << "\n"
      << "events replayed  " << events_ << " (and " << warmup_events_ << " before the period, to warm features up)\n"
      << "labels           " << fraud_total_ << " fraud, " << legitimate_total_ << " legitimate, "
      << events_ - fraud_total_ - legitimate_total_ << " unlabelled\n\n"
      << row("rule", "hits", "active", "change", "precision", "recall", "fraud caught", "legit flagged", "a day");
  // Hits a day over the period's events (a day at least), and money in the base currency.
  auto days = std::max(1.0, static_cast<double>(last_at_ - first_at_) / 86'400'000'000.0);
  auto per_day = [&](std::uint64_t hits) {
    char text[16];
    std::snprintf(text, sizeof text, "%.1f", static_cast<double>(hits) / days);
    return std::string(text);
  };
  std::set<std::string> ids;
  for (const auto& [id, s] : candidate_rules_) ids.insert(id);
  for (const auto& [id, s] : active_rules_) ids.insert(id);
  for (const auto& id : ids) {
    auto c = candidate_rules_.count(id) ? candidate_rules_.at(id) : RuleScore{};
    auto a = active_rules_.count(id) ? active_rules_.at(id) : RuleScore{};
    auto change = static_cast<long long>(c.hits) - static_cast<long long>(a.hits);
    out << row(id + (candidate_rules_.count(id) ? "" : " (removed)") + (active_rules_.count(id) ? "" : " (new)"),
               std::to_string(c.hits), std::to_string(a.hits), (change > 0 ? "+" : "") + std::to_string(change),
               ratio(c.precision()), ratio(c.recall(fraud_total_)), money(c.fraud_amount), money(c.legitimate_amount),
               per_day(c.hits));
  }
  auto change = static_cast<long long>(candidate_flagged_.hits) - static_cast<long long>(active_flagged_.hits);
  out << row("decision review or block", std::to_string(candidate_flagged_.hits), std::to_string(active_flagged_.hits),
             (change > 0 ? "+" : "") + std::to_string(change), ratio(candidate_flagged_.precision()),
             ratio(candidate_flagged_.recall(fraud_total_)), money(candidate_flagged_.fraud_amount),
             money(candidate_flagged_.legitimate_amount), per_day(candidate_flagged_.hits))
      << "\ndecisions that would change: " << decisions_changed() << "\n";
  for (const auto& [pair, count] : changes_)
    out << "  " << to_string(pair.first) << " -> " << to_string(pair.second) << ": " << count << "\n";
  out << "\nservice decisions under the active rules: " << compared_ << " compared, " << compared_ - not_reproduced_
      << " reproduced\n";
  if (not_reproduced_ > 0) {
    out << "  not reproduced (first " << not_reproduced_ids_.size() << "):";
    for (const auto& id : not_reproduced_ids_) out << " " << id;
    out << "\n";
  }
}

}  // namespace fraud::rules
