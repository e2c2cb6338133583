// Hot reload on a running replica: a changed file takes effect, an invalid one changes
// nothing and says why, SIGHUP reloads on demand.
#include <doctest/doctest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

void write_rules(const std::string& path, const std::string& version, const std::string& threshold) {
  std::ofstream(path + ".tmp") << "version: " << version << "\nbase_currency: EUR\nrules:\n"
                               << "  - {id: large_amount, when: amount_base > " << threshold << ", score: 60}\n"
                               << "decision: {review_at: 50, block_at: 100}\n";
  std::filesystem::rename(path + ".tmp", path);  // atomically, as a deployment would
}

std::string metrics_of(const std::string& log_path) {
  auto port = logged_port(log_path, "metrics_port");
  return port ? http_get(port, "/metrics").value_or("") : "";
}

}  // namespace

/// A replica of its own on a one-partition topic, with a rule file it may reload.
struct ReloadingReplica {
  explicit ReloadingReplica(const std::string& watch_ms)
      : services(Services::from_environment()), db(services), topic(unique_name("transactions")),
        dir("/tmp/" + unique_name("reload")) {
    std::filesystem::create_directories(dir);
    rules = dir + "/rules.yaml", log = dir + "/replica.log";
    write_rules(rules, "v1", "10000");
    create_topic(services.bootstrap_servers, topic, 1);
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"},
        replica_environment(services, db.service_url(), topic, unique_name("fraud"),
                            {{"FRAUD_RULES_FILE", rules}, {"FRAUD_RULES_WATCH_INTERVAL_MS", watch_ms}}),
        log);
    REQUIRE(wait_until(30s, [&] { return active("v1"); }));
  }

  bool active(const std::string& version) {
    return metrics_of(log).find("fraud_rule_set_info{version=\"" + version + "+") != std::string::npos;
  }

  /// Publishes one 500.00 EUR event and waits until it is committed.
  void apply_one(int i) {
    produce(services.bootstrap_servers, topic, {transaction_event(i, "500.00")});
    REQUIRE(wait_until(30s, [&] { return offsets_at_end(db, services, topic, 1); }));
  }

  Services services;
  TestDatabase db;
  std::string topic, dir, rules, log;
  std::unique_ptr<ChildProcess> process;
};

TEST_CASE("a changed rule file takes effect, and an invalid one changes nothing and says why") {
  ReloadingReplica r("100");
  r.apply_one(1);
  CHECK(r.db.count("SELECT count(*) FROM fraud_alerts") == 0);

  write_rules(r.rules, "v2", "100");
  REQUIRE(wait_until(30s, [&] { return r.active("v2"); }));
  r.apply_one(2);
  CHECK(r.db.count("SELECT count(*) FROM fraud_alerts WHERE rule_set_version LIKE 'v2+%'") == 1);

  std::ofstream(r.rules) << "version: v3\nrules:\n  - {id: x, when: amout > 1}\n";
  REQUIRE(wait_until(30s, [&] { return read_file(r.log).find("rule file rejected") != std::string::npos; }));
  CHECK(read_file(r.log).find("unknown field or feature 'amout'") != std::string::npos);
  CHECK(r.active("v2"));
  CHECK(metrics_of(r.log).find("fraud_rule_reloads_total{result=\"failed\"} 1") != std::string::npos);
  CHECK(r.process->stop(SIGTERM, 30s) == 0);
}

TEST_CASE("SIGHUP reloads the rule file when watching is off") {
  ReloadingReplica r("0");
  write_rules(r.rules, "v2", "100");
  CHECK_FALSE(wait_until(2s, [&] { return r.active("v2"); }));  // not watching: nothing happens by itself
  kill(r.process->pid(), SIGHUP);
  CHECK(wait_until(30s, [&] { return r.active("v2"); }));
  CHECK(r.process->stop(SIGTERM, 30s) == 0);
}
