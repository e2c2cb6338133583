// `fraud-consumer rules backtest` on a real database: stored history and labels in, a
// per-rule comparison out, nothing written.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "consumer/batch_applier.h"
#include "events/encode.h"
#include "events/time.h"
#include "sim/bank.h"
#include "store/batch_store.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;

namespace {}  // namespace

TEST_CASE("a backtest compares a candidate rule file with the active one against the labels") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  // History: three payments of 12,500, one of 6,000 and six of 50, applied as the service would.
  auto active = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"));
  rules::FeatureEngine engine(active);
  consumer::BatchApplier store(db.service_url(), "g", "test", {});
  const char* amounts[] = {"12500.00", "12500.00", "12500.00", "6000.00", "50.00",
                           "50.00",    "50.00",    "50.00",    "50.00",   "50.00"};
  std::vector<std::pair<std::int64_t, OutgoingRecord>> records;
  for (int i = 0; i < 10; ++i) records.emplace_back(i, transaction_event(i, amounts[i]));
  REQUIRE(store.apply(partition_batch(store.claim("t", 0).epoch, records), engine).processed == 10);
  // Investigations found txn-0, txn-1 and txn-3 fraudulent, txn-2 legitimate.
  db.count(
      "WITH l AS (INSERT INTO fraud_labels (transaction_id, is_fraud) VALUES "
      "('txn-0', true), ('txn-1', true), ('txn-2', false), ('txn-3', true) RETURNING 1) SELECT count(*) FROM l");
  auto candidate = "/tmp/" + unique_name("candidate") + ".yaml";
  std::ofstream(candidate) << "version: lower\nbase_currency: EUR\nrules:\n"
                           << "  - {id: large_amount, when: amount_base > 5000, score: 60}\n"
                           << "decision: {review_at: 50, block_at: 100}\n";
  auto before = db.count("SELECT count(*) FROM fraud_alerts");

  auto report = output_of("FRAUD_POSTGRES_URL='" + db.service_url() + "' FRAUD_KAFKA_BOOTSTRAP_SERVERS=unused:1 " +
                          "FRAUD_RULES_FILE=" FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml " +
                          FRAUD_CONSUMER_BINARY " rules backtest --rules " + candidate);
  CAPTURE(report);
  CHECK(report.find("events replayed  10") != std::string::npos);
  CHECK(report.find("labels           3 fraud, 1 legitimate, 6 unlabelled") != std::string::npos);
  // Candidate 4 hits against the active file's 3; of the labelled hits 3 of 4 were fraud;
  // it catches all 3 frauds.
  CHECK(report.find("large_amount                          4          3         +1      0.750      1.000") !=
        std::string::npos);
  // The fraud it caught: 12,500 + 12,500 + 6,000 EUR; the legitimate money it flagged: 12,500;
  // four hits on the one day the events span.
  CHECK(report.find("1.000          31000          12500      4.0") != std::string::npos);
  CHECK(report.find("decisions that would change: 1") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == before);  // a backtest writes nothing
}

namespace {

/// A batch of partition `partition` of topic "t", as the batch loop decodes it.
store::PartitionBatch batch_of(std::int32_t partition, std::int64_t epoch, std::int64_t first_offset,
                               const std::vector<events::Event>& events) {
  store::PartitionBatch batch{"t", partition, epoch, {}};
  events::Decoder decoder;
  for (std::size_t k = 0; k < events.size(); ++k) {
    events::Record record{"t",
                          partition,
                          first_offset + static_cast<std::int64_t>(k),
                          0,
                          events[k].account_id,
                          {},
                          events::to_json(events[k])};
    auto decoded = record.decode(decoder);
    REQUIRE(decoded.event);
    batch.records.push_back({record, decoded.event, decoded.error});
  }
  return batch;
}

}  // namespace

TEST_CASE("a backtest of the active rules over a processed period reproduces every decision the service made") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  // The simulator's customers and fraud scenarios (card testing on shared devices, new payees,
  // travel) on two partitions owned by two replicas, with each partition's events arriving
  // out of event-time order and a tenth of them copied onto the other partition: the order
  // the service applies them in is not event time, and cross-account features (cards,
  // devices) span both replicas.
  sim::Population population;
  population.customers = 150;
  population.fraud_scenarios_per_1000 = 40;
  population.run_id = unique_name("parity");
  sim::Bank bank(population);
  std::vector<events::Event> partitions[2];
  std::map<std::string, bool> labels;
  std::mt19937 random(7);
  for (int n = 0; n < 3000; ++n) {
    auto t = bank.next();
    labels[t.event.transaction_id] = t.fraud;
    auto home = std::hash<std::string>{}(t.event.account_id) % 2;
    partitions[home].push_back(t.event);
    if (random() % 10 == 0) partitions[1 - home].push_back(t.event);  // a copy re-keyed elsewhere
  }
  // One payee paid a little on the first day and a lot on the fifth: not new to the service.
  auto payment_to_payee = [&](const std::string& id, const char* at, std::int64_t cents) {
    auto e = partitions[0].front();
    e.event_id = e.transaction_id = population.run_id + "-" + id;
    e.occurred_at = *events::parse_rfc3339(at);
    e.recorded_at.reset();
    e.kind = events::Kind::transfer;
    e.direction = events::Direction::debit;
    e.amount = {cents, "EUR"};
    e.counterparty.account = "payee-of-long-ago";
    labels[e.transaction_id] = false;
    return e;
  };
  partitions[0].insert(partitions[0].begin() + 1, payment_to_payee("old-payee-1", "2026-11-01T06:00:00Z", 10000));
  partitions[0].push_back(payment_to_payee("old-payee-2", "2026-11-05T12:00:00Z", 900000));
  for (auto& events : partitions) {
    // Late arrivals: some events swap places with a neighbour, and a few arrive hours late.
    for (std::size_t k = 1; k < events.size(); ++k)
      if (random() % 8 == 0) std::swap(events[k - 1], events[k]);
    for (std::size_t k = 0; k + 300 < events.size(); k += 97) {
      auto late = events[k];
      events.erase(events.begin() + static_cast<std::ptrdiff_t>(k));
      events.insert(events.begin() + static_cast<std::ptrdiff_t>(k + 250), std::move(late));
    }
  }

  // Two replicas apply their partitions at the same time, in batches of 1 to 60, so batches
  // that share a card or a device wait for each other's commit.
  auto rules_file = FRAUD_SOURCE_DIR "/config/rules.yaml";
  auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(rules_file));
  std::size_t applied[2] = {0, 0};
  bool fenced[2] = {false, false};
  std::string failure[2];
  auto replica = [&](std::size_t p) {
    try {
      consumer::BatchApplier store(db.service_url(), "g", "replica-" + std::to_string(p), {});
      rules::FeatureEngine engine(rules);
      auto epoch = store.claim("t", static_cast<std::int32_t>(p)).epoch;
      std::mt19937 sizes(static_cast<unsigned>(p));
      for (std::size_t next = 0; next < partitions[p].size();) {
        auto size = std::min<std::size_t>(1 + sizes() % 60, partitions[p].size() - next);
        std::vector<events::Event> chunk(partitions[p].begin() + static_cast<std::ptrdiff_t>(next),
                                         partitions[p].begin() + static_cast<std::ptrdiff_t>(next + size));
        auto result =
            store.apply(batch_of(static_cast<std::int32_t>(p), epoch, static_cast<std::int64_t>(next), chunk), engine);
        fenced[p] = fenced[p] || result.fenced;
        applied[p] += result.processed;
        next += size;
      }
    } catch (const std::exception& e) {
      failure[p] = e.what();
    }
  };
  std::thread first(replica, 0), second(replica, 1);
  first.join(), second.join();
  CHECK(failure[0] == "");
  CHECK(failure[1] == "");
  REQUIRE_FALSE(fenced[0]);
  REQUIRE_FALSE(fenced[1]);
  REQUIRE(applied[0] + applied[1] == 3002);
  std::string values;
  for (const auto& [id, fraud] : labels)
    values += std::string(values.empty() ? "" : ",") + "('" + id + "', " + (fraud ? "true" : "false") + ")";
  db.count("WITH l AS (INSERT INTO fraud_labels (transaction_id, is_fraud) VALUES " + values +
           " RETURNING 1) SELECT count(*) FROM l");
  REQUIRE(db.count("SELECT count(*) FROM transactions WHERE decision <> 'allow'") > 0);  // rules decided something

  auto report = backtest_report(db, rules_file);
  CAPTURE(report);
  CHECK(report.find("events replayed  3002") != std::string::npos);
  CHECK(report.find("service decisions under the active rules: 3002 compared, 3002 reproduced") != std::string::npos);
  // Every rule's hits in the replay equal the alerts the service raised for it.
  for (const auto& row : db.query("SELECT rule_id, count(*) FROM fraud_alerts GROUP BY rule_id")) {
    auto rule = std::string(row[0].c_str());
    auto at = report.find("\n" + rule + " ");
    REQUIRE_MESSAGE(at != std::string::npos, rule);
    std::istringstream line(report.substr(at + 1 + rule.size()));
    long hits = 0, active = 0;
    line >> hits >> active;
    CHECK_MESSAGE(active == row[1].as<long>(), rule);
  }

  // A later period with a warm-up shorter than the history: the payees paid before it are
  // still not new, as the service's first_seen_pairs say (the replay alone would call them new).
  auto later = backtest_report(db, rules_file, "--since 2026-11-04 --warmup 1d");
  CAPTURE(later);
  auto at = later.find("\nlarge_transfer_new_payee ");
  REQUIRE(at != std::string::npos);
  std::istringstream line(later.substr(at + 26));
  long hits = 0, active = 0;
  line >> hits >> active;
  CHECK(active == db.count("SELECT count(*) FROM fraud_alerts WHERE rule_id = 'large_transfer_new_payee' "
                           "AND occurred_at >= '2026-11-04'"));

  // One day in the middle, warmed up on everything before it, while events of later days were
  // applied among its own: each of its decisions is reproduced.
  auto day = backtest_report(db, rules_file, "--since 2026-11-03 --until 2026-11-04");
  CAPTURE(day);
  std::smatch compared;
  REQUIRE(std::regex_search(day, compared, std::regex("active rules: ([0-9]+) compared, ([0-9]+) reproduced")));
  CHECK(std::stol(compared[1]) > 300);
  CHECK(compared[1] == compared[2]);
}
