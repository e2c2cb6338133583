// fraud-consumer: the fraud-detection service and its operator commands.
//
//   fraud-consumer run [--config FILE]       consume, deduplicate, apply rules, until SIGTERM
//   fraud-consumer migrate [--config FILE]   apply the database migrations
//
// Exit status: 0 done, 1 failed while running, 2 bad command line or configuration.

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <iostream>

#include "consumer/batch_loop.h"
#include "consumer/config.h"
#include "consumer/kafka_source.h"
#include "consumer/log.h"
#include "dedup/batch_store.h"
#include "dedup/migrations.h"
#include "events/money.h"

namespace {

using namespace fraud;

std::atomic<bool> stop_requested{false};
unsigned shutdown_timeout_seconds = 30;

// Async-signal-safe only: set the flag and arm the alarm that bounds the shutdown.
extern "C" void request_stop(int) {
  if (!stop_requested.exchange(true)) alarm(shutdown_timeout_seconds);
}

extern "C" void shutdown_overran(int) {
  static const char message[] =
      "{\"level\":\"error\",\"msg\":\"shutdown took longer than shutdown.timeout_seconds; exiting\"}\n";
  (void)!write(2, message, sizeof message - 1);
  _exit(1);  // safe: whatever was not committed is read again by the next owner
}

// Chaos-test hook: FRAUD_FAILPOINT_KILL_AFTER_COMMITS=N kills the process with SIGKILL right
// after its Nth batch commit to the database, before that batch's Kafka commit, the window
// that exactly-once must survive. Never set it in production.
consumer::LoopHooks failpoints() {
  const char* n = std::getenv("FRAUD_FAILPOINT_KILL_AFTER_COMMITS");
  if (!n) return {};
  auto remaining = std::make_shared<long>(std::atol(n));
  return {[remaining] {
    if (--*remaining <= 0) raise(SIGKILL);
  }};
}

constexpr const char* kUsage =
    "usage: fraud-consumer run [--config FILE]\n"
    "       fraud-consumer migrate [--config FILE]\n"
    "Every setting can be given as FRAUD_<SECTION>_<KEY>; see config/consumer.yaml.\n";

std::string replica_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

rules::RuleSet placeholder_rules(const consumer::RulesConfig& config) {
  std::string error;
  auto threshold = events::parse_money(config.large_amount_threshold, config.large_amount_currency, error);
  return rules::RuleSet("placeholder-1", {rules::LargeAmountRule{"large_amount", *threshold}});
}

int migrate(const consumer::Config& config) {
  int applied = dedup::migrate(config.postgres.url, dedup::embedded_migrations(), [](std::string_view name) {
    consumer::log::info("migration applied", {{"migration", std::string(name)}});
  });
  consumer::log::info("database is up to date", {{"applied", std::to_string(applied)}});
  return 0;
}

int run(const consumer::Config& config) {
  shutdown_timeout_seconds = static_cast<unsigned>(config.shutdown.timeout_seconds);
  std::signal(SIGALRM, shutdown_overran);
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  auto name = replica_name();
  auto rules = placeholder_rules(config.rules);
  dedup::BatchStore store(config.postgres.url, config.kafka.group_id, name,
                          {config.outbox.alerts_topic, config.outbox.dead_letter_topic});
  consumer::BatchLoop loop(config.batch, config.limits, store, rules, failpoints());
  consumer::KafkaSource source(config.kafka, name, loop);
  consumer::log::info("consumer started", {{"replica", name}, {"group", config.kafka.group_id}});
  loop.run(source, stop_requested);
  source.close();  // leave the group now, so its partitions move to the others at once
  const auto& c = loop.counters();
  consumer::log::info("consumer stopped", {{"processed", std::to_string(c.processed)},
                                           {"duplicates", std::to_string(c.duplicates)},
                                           {"rejected", std::to_string(c.rejected)},
                                           {"alerts", std::to_string(c.alerts)},
                                           {"fenced_batches", std::to_string(c.fenced_batches)}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cerr << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1], config_path;
  for (int i = 2; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[++i];
    else return std::cerr << "fraud-consumer: unknown argument '" << argv[i] << "'\n" << kUsage, 2;
  }
  if (command != "run" && command != "migrate") return std::cerr << "fraud-consumer: unknown command '" << command << "'\n" << kUsage, 2;

  consumer::Config config;
  try {
    config = consumer::load_config(config_path, consumer::process_environment());
  } catch (const consumer::ConfigError& e) {
    std::cerr << "fraud-consumer: configuration error: " << e.what() << "\n";
    return 2;
  }
  consumer::log::set_level(config.log.level);
  try {
    return command == "migrate" ? migrate(config) : run(config);
  } catch (const std::exception& e) {
    consumer::log::error("fatal", {{"command", command}, {"error", e.what()}});
    return 1;
  }
}
