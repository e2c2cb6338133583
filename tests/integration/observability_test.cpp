// What operators see: a real Prometheus scrapes two running replicas; every expression of the
// shipped dashboard and alerting rules must return data, so no panel or alert is silently
// broken; and the replicas' counters agree with the database.
#include <doctest/doctest.h>
#include <signal.h>
#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

constexpr int kPartitions = 4;

/// The port a replica logged as "metrics_port", once it has.
unsigned short metrics_port(const std::string& log_path) { return logged_port(log_path, "metrics_port"); }

/// Sums the samples of `metric` whose labels contain `label_filter` in a /metrics page.
double sum_samples(const std::string& page, const std::string& metric, const std::string& label_filter = "") {
  double sum = 0;
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with(metric + "{") && !line.starts_with(metric + " ")) continue;
    if (!label_filter.empty() && line.find(label_filter) == std::string::npos) continue;
    sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

/// Prometheus's answer to an instant query: the number of series, or -1 on an error.
long series_count(unsigned short port, const std::string& query) {
  auto body = http_get(port, "/api/v1/query?query=" + url_encode(query));
  if (!body) return -1;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*body).get(doc) != simdjson::SUCCESS) return -1;
  std::string_view status;
  if (doc["status"].get(status) || status != "success") return -1;
  simdjson::dom::array result;
  if (doc["data"]["result"].get(result)) return -1;
  return static_cast<long>(result.size());
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

/// The dashboard's queries, with Grafana's variables filled in as Grafana would.
std::vector<std::string> dashboard_queries() {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.load(std::string(FRAUD_SOURCE_DIR) + "/dashboards/fraud-consumer.json");
  std::vector<std::string> queries;
  for (simdjson::dom::element panel : doc["panels"].get_array()) {
    simdjson::dom::array targets;
    if (panel["targets"].get(targets)) continue;
    for (simdjson::dom::element target : targets) {
      std::string expr{std::string_view(target["expr"])};
      queries.push_back(replace_all(replace_all(expr, "$replica", ".*"), "$__rate_interval", "1m"));
    }
  }
  return queries;
}

/// Each alert's condition without its threshold, side by side for `and`: the part that must
/// return data (the comparison is what decides whether it fires, and here it should not).
std::vector<std::string> alert_queries() {
  auto rules = YAML::LoadFile(std::string(FRAUD_SOURCE_DIR) + "/dashboards/alerts.yml");
  static const std::regex threshold(R"(\s*(>|<|>=|<=|==|!=)\s*[-0-9.e]+\s*$)");
  std::vector<std::string> queries;
  for (const auto& group : rules["groups"])
    for (const auto& rule : group["rules"]) {
      auto expr = rule["expr"].as<std::string>();
      for (std::size_t start = 0;;) {
        auto next = expr.find(" and ", start);
        queries.push_back(std::regex_replace(expr.substr(start, next - start), threshold, ""));
        if (next == std::string::npos) break;
        start = next + 5;
      }
    }
  return queries;
}

void write_prometheus_config(const std::string& path, const std::vector<unsigned short>& targets) {
  std::ofstream out(path);
  out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << FRAUD_SOURCE_DIR << "/dashboards/alerts.yml\n"
      << "scrape_configs:\n  - job_name: fraud-consumer\n    static_configs:\n      - targets: [";
  for (std::size_t i = 0; i < targets.size(); ++i) out << (i ? ", " : "") << "\"127.0.0.1:" << targets[i] << "\"";
  out << "]\n";
}

}  // namespace

TEST_CASE("Prometheus scrapes two replicas and every dashboard and alert expression returns data") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  auto topic = unique_name("transactions"), group = unique_name("fraud");
  auto dir = "/tmp/" + unique_name("observability");
  std::filesystem::create_directories(dir);
  create_topic(services.bootstrap_servers, topic, kPartitions);

  // Each replica opens an inline door too, so that its panels and alert have data.
  const std::string token = "observability-token-0123456789";
  auto env = replica_environment(services, db.service_url(), topic, group,
                                 {{"FRAUD_KAFKA_PROPERTIES_STATISTICS_INTERVAL_MS", "1000"},
                                  {"FRAUD_DECISIONS_LISTEN", "127.0.0.1:0"},
                                  {"FRAUD_DECISIONS_TOKEN", token}});
  std::vector<std::unique_ptr<ChildProcess>> replicas;
  std::vector<unsigned short> ports, doors;
  for (int i = 0; i < 2; ++i) {
    auto log = dir + "/replica-" + std::to_string(i) + ".log";
    replicas.push_back(
        std::make_unique<ChildProcess>(std::vector<std::string>{FRAUD_CONSUMER_BINARY, "run"}, env, log));
    REQUIRE(wait_until(30s, [&] { return metrics_port(log) != 0 && logged_port(log, "decisions_port") != 0; }));
    ports.push_back(metrics_port(log));
    doors.push_back(logged_port(log, "decisions_port"));
  }
  REQUIRE(wait_until(60s, [&] {
    return db.count("SELECT count(DISTINCT owner) FROM consumer_offsets WHERE topic = '" + topic + "'") == 2;
  }));

  // 2,000 events, every 50th large, every 10th delivered twice, every 200th followed by a poison record.
  std::vector<OutgoingRecord> records, again;
  for (int i = 0; i < 2000; ++i) {
    records.push_back(transaction_event(i, i % 50 == 0 ? "12500.00" : "42.10"));
    if (i % 10 == 0) again.push_back(records.back());
    if (i % 200 == 0) records.push_back({records.back().key, "{\"broken", {}});
  }
  records.insert(records.end(), again.begin(), again.end());
  produce(services.bootstrap_servers, topic, records);
  REQUIRE(wait_until(60s, [&] { return offsets_at_end(db, services, topic, kPartitions); }));

  {  // health endpoints answer
    for (auto port : ports) {
      int status = 0;
      CHECK(http_get(port, "/healthz", &status));
      CHECK(status == 200);
      CHECK(wait_until(30s, [&] { return http_get(port, "/readyz", &status) && status == 200; }));
    }
  }

  {  // the counters agree with the database
    double processed = 0, duplicates = 0, rejected = 0, alerts = 0;
    for (auto port : ports) {
      auto page = http_get(port, "/metrics");
      REQUIRE(page);
      processed += sum_samples(*page, "fraud_records_total", "outcome=\"processed\"");
      duplicates += sum_samples(*page, "fraud_records_total", "outcome=\"duplicate\"");
      rejected += sum_samples(*page, "fraud_records_total", "outcome=\"rejected\"");
      alerts += sum_samples(*page, "fraud_alerts_total");
    }
    CHECK(processed == db.count("SELECT count(*) FROM processed_events"));
    CHECK(rejected == db.count("SELECT count(*) FROM rejected_events"));
    CHECK(alerts == db.count("SELECT count(*) FROM fraud_alerts"));
    CHECK(duplicates == static_cast<double>(records.size()) - processed - rejected);
  }

  {  // every dashboard panel and alert condition returns data in Prometheus
    auto prometheus_port = free_port();
    write_prometheus_config(dir + "/prometheus.yml", ports);
    ChildProcess prometheus(
        {"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
         "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port)},
        {}, dir + "/prometheus.log");
    // Rates need two samples in their window: wait for a few scrapes of both replicas.
    REQUIRE(wait_until(60s, [&] {
      return series_count(prometheus_port, "count_over_time(up{job=\"fraud-consumer\"}[1m]) >= 5") == 2;
    }));
    // Each door decides a few payments the stream never sees, while Prometheus scrapes (after
    // the counters' check, which they would not fit), so the door's rates are not all zero.
    for (std::size_t d = 0; d < doors.size(); ++d)
      for (int i = 0; i < 5; ++i) {
        int status = 0;
        auto body = transaction_event(10000 + static_cast<int>(d) * 100 + i, "42.10").value;
        auto answer = http_call(doors[d], {"POST", "/v1/decisions", "Bearer " + token, body}, &status);
        CHECK(status == 200);
        CHECK_MESSAGE((answer && answer->find("\"fallback\":false") != std::string::npos), answer.value_or(""));
      }
    CHECK(wait_until(60s, [&] {
      return series_count(prometheus_port,
                          "sum by (instance) (increase(fraud_decision_requests_total{outcome=\"decided\"}[1m])) > 0") ==
             2;
    }));
    auto queries = dashboard_queries();
    auto conditions = alert_queries();
    CHECK(queries.size() >= 25);
    CHECK(conditions.size() >= 11);
    queries.insert(queries.end(), conditions.begin(), conditions.end());
    for (const auto& query : queries) {
      CAPTURE(query);
      CHECK(series_count(prometheus_port, query) > 0);
    }
  }

  for (auto& r : replicas) CHECK(r->stop(SIGTERM, 30s) == 0);
}
