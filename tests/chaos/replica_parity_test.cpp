// Features exact across replicas, through the real broker: a feature's value is what one
// process computes applying the events in the order the service committed them (per key),
// however many replicas share the partitions. These tests fix that order (each delivery
// waits for the commits it must follow) and vary only the number of replicas.
#include <doctest/doctest.h>

#include <map>
#include <set>
#include <sstream>

#include "events/encode.h"
#include "events/time.h"
#include "rules/features.h"
#include "sim/bank.h"
#include "tests/chaos/cluster.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

OutgoingRecord record_of(const events::Event& e) {
  return {e.account_id, events::to_json(e), {{"event_id", e.event_id}, {"event_type", "TransactionRecorded"}}};
}

/// The simulator's customers and fraud scenarios (card testing on one device across six
/// accounts, account takeovers with travel, new payees, structuring), fixed by seed and start.
std::vector<events::Event> seeded_simulation(int transactions) {
  sim::Population population;
  population.customers = 200;
  population.fraud_scenarios_per_1000 = 30;
  population.start = *events::parse_rfc3339("2026-10-01T00:00:00Z");
  population.seed = 20261128;
  population.run_id = "parity";
  sim::Bank bank(population);
  std::vector<events::Event> out;
  for (int n = 0; n < transactions; ++n) out.push_back(bank.next().event);
  return out;
}

/// Cuts `events` into deliveries in which no feature key (or first_seen pair) of `rules`
/// appears on two accounts, so on two partitions. A delivery's events of one key are then on
/// one partition, in order; waiting for each delivery's commits before the next fixes every
/// key's commit order, whichever replica owns which partition.
std::vector<std::vector<events::Event>> deliveries(const std::vector<events::Event>& events,
                                                   std::shared_ptr<const rules::RuleSet> rules) {
  rules::FeatureEngine engine(std::move(rules));
  std::vector<std::vector<events::Event>> out(1);
  std::map<std::string, std::string> account_of;  // key → the one account it appeared on
  for (const auto& e : events) {
    std::vector<std::string> keys;
    for (const auto& [field, key] : engine.keys_of(e)) keys.push_back(std::string(rules::to_string(field)) + "=" + key);
    for (const auto& [index, a, b] : engine.pairs_of(e)) keys.push_back(std::to_string(index) + "=" + a + "\n" + b);
    bool crosses = false;
    for (const auto& key : keys)
      if (auto found = account_of.find(key); found != account_of.end() && found->second != e.account_id) crosses = true;
    if (crosses) out.emplace_back(), account_of.clear();
    for (const auto& key : keys) account_of.emplace(key, e.account_id);
    out.back().push_back(e);
  }
  return out;
}

/// Every event's decision, score and rules hit, a line each in event id order.
std::string decisions(TestDatabase& db) {
  std::string out;
  for (const auto& row : db.query(R"sql(
      SELECT t.event_id, t.decision, t.score, coalesce(string_agg(a.rule_id, ',' ORDER BY a.rule_id), '')
      FROM transactions t LEFT JOIN fraud_alerts a USING (event_source, event_id)
      GROUP BY 1, 2, 3 ORDER BY 1)sql"))
    out += std::string(row[0].c_str()) + " " + row[1].c_str() + " " + row[2].c_str() + " " + row[3].c_str() + "\n";
  return out;
}

/// What `rules backtest` of the active rules says about the service's decisions in `db`: one
/// process replaying the stored events in the order they were applied, an independent
/// reference for every replica count.
std::string backtest_verdict(TestDatabase& db, const std::string& rules_file) {
  auto out = backtest_report(db, rules_file);
  auto at = out.find("service decisions under the active rules:");
  return at == std::string::npos ? out : out.substr(at, out.find('\n', at) - at);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// The lines of `a` and `b` that differ (the first ten), for a failure message.
std::string differences(const std::string& a, const std::string& b) {
  auto left = lines_of(a), right = lines_of(b);
  std::string out;
  int shown = 0;
  for (std::size_t i = 0; i < std::max(left.size(), right.size()) && shown < 10; ++i) {
    auto l = i < left.size() ? left[i] : "", r = i < right.size() ? right[i] : "";
    if (l != r) out += "- " + l + "\n+ " + r + "\n", ++shown;
  }
  return out;
}

}  // namespace

TEST_CASE("the starter pack decides every event alike with one, two and four replicas") {
  auto rules_file = FRAUD_SOURCE_DIR "/config/rules.yaml";
  auto events = seeded_simulation(3000);
  auto plan = deliveries(events, std::make_shared<const rules::RuleSet>(rules::RuleSet::load(rules_file)));
  MESSAGE(events.size() << " events in " << plan.size() << " deliveries");
  std::map<int, std::string> decided;
  std::map<int, std::string> hits_per_rule;
  for (int replicas : {1, 2, 4}) {
    Cluster cluster(8, "parity-" + std::to_string(replicas));
    std::map<std::string, std::string> env = {{"FRAUD_RULES_FILE", rules_file}, {"FRAUD_RETENTION_DAYS", "0"}};
    for (int r = 0; r < replicas; ++r) cluster.start(static_cast<std::size_t>(r), env);
    REQUIRE(wait_until(60s, [&] { return cluster.owners_are(replicas); }));
    long applied = 0;
    for (const auto& delivery : plan) {
      std::vector<OutgoingRecord> records;
      for (std::size_t k = 0; k < delivery.size(); ++k) {
        records.push_back(record_of(delivery[k]));
        if (k % 10 == 3) records.push_back(records.back());  // redelivered
      }
      cluster.produce(records);
      applied += static_cast<long>(delivery.size());
      REQUIRE(wait_until(60s, [&] { return cluster.db().count("SELECT count(*) FROM processed_events") == applied; }));
    }
    REQUIRE(wait_until(60s, [&] { return cluster.caught_up(); }));
    cluster.stop_all();
    decided[replicas] = decisions(cluster.db());
    CHECK(backtest_verdict(cluster.db(), rules_file) ==
          "service decisions under the active rules: 3000 compared, 3000 reproduced");
    for (const auto& row : cluster.db().query("SELECT rule_id, count(*) FROM fraud_alerts GROUP BY 1 ORDER BY 1"))
      hits_per_rule[replicas] += std::string(row[0].c_str()) + " " + row[1].c_str() + "\n";
  }
  MESSAGE("hits per rule with one replica:\n" << hits_per_rule[1]);
  // The rules whose keys span accounts, so partitions and replicas, decided something.
  CHECK(hits_per_rule[1].find("many_cards_one_device") != std::string::npos);
  CHECK(hits_per_rule[1].find("impossible_travel") != std::string::npos);
  CHECK(hits_per_rule[2] == hits_per_rule[1]);
  CHECK(hits_per_rule[4] == hits_per_rule[1]);
  CHECK(decided[1].size() > 0);
  CHECK(differences(decided[1], decided[2]) == "");  // lines "event decision score rules" that differ
  CHECK(differences(decided[1], decided[4]) == "");
}

TEST_CASE(
    "six cards on one device across three partitions three replicas own fire the device rule on the fourth to sixth") {
  Cluster cluster(3, "device");
  std::map<std::string, std::string> env = {{"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/device_rules.yaml"},
                                            {"FRAUD_RETENTION_DAYS", "0"}};
  for (std::size_t r = 0; r < 3; ++r) cluster.start(r, env);
  REQUIRE(wait_until(60s, [&] { return cluster.owners_are(3); }));
  // Card i on account i and partition i % 3, a minute apart, each once its predecessor
  // committed: whichever replica owns which partition, each meets the device, then two other
  // replicas extend it, then it meets it again.
  for (int i = 0; i < 6; ++i) {
    auto record = card_on_shared_device(i);
    record.partition = i % 3;
    cluster.produce({record});
    REQUIRE(wait_until(60s, [&] { return cluster.db().count("SELECT count(*) FROM processed_events") == i + 1; }));
  }
  // Three owners between them applied the six (each partition has its owner's name).
  CHECK(cluster.db().count("SELECT count(DISTINCT owner) FROM consumer_offsets WHERE next_offset = 2") == 3);
  cluster.stop_all();
  auto reasons = cluster.db().query(R"sql(
      SELECT t.account_id, a.reason FROM fraud_alerts a JOIN transactions t USING (event_source, event_id)
      ORDER BY t.occurred_at)sql");
  REQUIRE(reasons.size() == 3);
  CHECK(std::string(reasons[0][0].c_str()) == "acc-3");
  CHECK(std::string(reasons[0][1].c_str()).rfind("cards_per_device_1h (4)", 0) == 0);
  CHECK(std::string(reasons[1][1].c_str()).rfind("cards_per_device_1h (5)", 0) == 0);
  CHECK(std::string(reasons[2][1].c_str()).rfind("cards_per_device_1h (6)", 0) == 0);
}
