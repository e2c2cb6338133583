// `fraud-consumer rules backtest` on a real database: stored history and labels in, a
// per-rule comparison out, nothing written.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "dedup/batch_store.h"
#include "tests/integration/support.h"

using namespace fraud;
using namespace fraud::testing;

namespace {

/// Runs a shell command and returns what it printed on stdout.
std::string output_of(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  while (auto n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  pclose(pipe);
  return out;
}

}  // namespace

TEST_CASE("a backtest compares a candidate rule file with the active one against the labels") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  // History: three payments of 12,500, one of 6,000 and six of 50, applied as the service would.
  auto active = std::make_shared<const rules::RuleSet>(
      rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"));
  rules::FeatureEngine engine(active);
  dedup::BatchStore store(db.service_url(), "g", "test", {});
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
  CHECK(report.find("decisions that would change: 1") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM fraud_alerts") == before);  // a backtest writes nothing
}
