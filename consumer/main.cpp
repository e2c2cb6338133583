// fraud-consumer: the fraud-detection service and its operator commands.
//
//   fraud-consumer run [--config FILE]       consume, deduplicate, apply rules, until SIGTERM
//   fraud-consumer migrate [--config FILE]   apply the database migrations
//   fraud-consumer store prune [--config FILE]  keep history and dedup ids to retention.days
//                                               (`dedup prune`, its former name, still works)
//
// Exit status: 0 done, 1 failed while running, 2 bad command line or configuration.

#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

#include "consumer/batch_loop.h"
#include "consumer/config.h"
#include "consumer/decision_api.h"
#include "consumer/decision_desk.h"
#include "consumer/endpoints.h"
#include "consumer/kafka_source.h"
#include "consumer/metrics.h"
#include "consumer/rule_reload.h"
#include "events/time.h"
#include "ops/cli.h"
#include "ops/http_server.h"
#include "ops/log.h"
#include "ops/stop_signal.h"
#include "rules/backtest.h"
#include "rules/rule_set.h"
#include "store/batch_store.h"
#include "store/history.h"
#include "store/key_indexes.h"
#include "store/list_entries.h"
#include "store/migrations.h"
#include "store/retention.h"

namespace {

using namespace fraud;

std::atomic<unsigned> reload_requests{0};

extern "C" void request_reload(int) { reload_requests.fetch_add(1); }
unsigned shutdown_timeout_seconds = 30;

// Runs in the signal handler at the first SIGTERM: async-signal-safe only.
void arm_shutdown_alarm() { alarm(shutdown_timeout_seconds); }

extern "C" void shutdown_overran(int) {
  static const char message[] =
      "{\"level\":\"error\",\"msg\":\"shutdown took longer than shutdown.timeout_seconds; exiting\"}\n";
  (void)!write(2, message, sizeof message - 1);
  _exit(1);  // safe: whatever was not committed is read again by the next owner
}

// Fail points for the chaos tests; never set them in production.
// FRAUD_FAILPOINT_KILL_AFTER_COMMITS=N kills the process with SIGKILL right after its Nth
// batch commit to the database, before that batch's Kafka commit: the window exactly-once
// must survive.
// FRAUD_FAILPOINT_STOP_BEFORE_APPLY=FILE: once FILE exists, the next batch removes it and
// stops the process (SIGSTOP) with the batch in hand, before its database transaction; after
// SIGCONT the batch goes straight to the database, with no poll between that could tell the
// process it lost its partitions. The zombie test uses it to make the fence do the refusing.
consumer::LoopCallbacks failpoints() {
  consumer::LoopCallbacks hooks;
  if (const char* n = std::getenv("FRAUD_FAILPOINT_KILL_AFTER_COMMITS")) {
    auto remaining = std::make_shared<long>(std::atol(n));
    hooks.after_database_commit = [remaining] {
      if (--*remaining > 0) return;
      // The chaos test tells this death from a crash by this line and the SIGKILL status.
      ops::log::warn("failpoint: killing this process between a database commit and its Kafka commit");
      raise(SIGKILL);
    };
  }
  if (const char* file = std::getenv("FRAUD_FAILPOINT_STOP_BEFORE_APPLY")) {
    hooks.before_database_apply = [file = std::string(file)] {
      if (std::remove(file.c_str()) != 0) return;  // not armed
      ops::log::warn("failpoint: stopping this process with a batch in hand");
      raise(SIGSTOP);
      ops::log::warn("failpoint: resumed with the batch in hand");
    };
  }
  return hooks;
}

constexpr const char* kUsage =
    "usage: fraud-consumer run [--config FILE]\n"
    "       fraud-consumer migrate [--config FILE]\n"
    "       fraud-consumer store prune [--from YYYY-MM-DD] [--config FILE]\n"
    "       fraud-consumer dedup prune ...   (store prune's former name)\n"
    "       fraud-consumer rules check FILE...\n"
    "       fraud-consumer rules backtest --rules FILE [--since T] [--until T] [--warmup 30d] [--config FILE]\n"
    "Every setting can be given as FRAUD_<SECTION>_<KEY>; see config/consumer.yaml.\n";

std::string replica_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

void print_rule_errors(const rules::RuleFileError& e) {
  for (const auto& error : e.errors) std::cerr << error << "\n";
}

// `rules check FILE...`: every error of every file, for the CI of whoever writes rules.
// It checks against the default limits; a service configured with smaller ones (limits.*)
// refuses such a file at start-up or reload, with the same message.
// A currency without a rate leaves amount_base missing: its events' amount rules cannot fire.
void warn_missing_rates(const std::string& file, const rules::RuleSet& rules) {
  auto missing = rules.currencies_without_rate();
  if (missing.empty()) return;
  std::string some;
  for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 12); ++i) some += (i ? " " : "") + missing[i];
  std::cout << file << ": warning: " << missing.size() << " currencies a record may carry have no rate (" << some
            << (missing.size() > 12 ? " …" : "")
            << "); amount rules cannot fire on them, and missing_rate: " << rules::to_string(rules.on_missing_rate())
            << " decides their events\n";
}

int check_rules(const std::vector<std::string>& files) {
  if (files.empty()) return ops::refuse(kUsage);
  int status = 0;
  for (const auto& file : files) {
    try {
      auto rules = rules::RuleSet::load(file);
      std::cout << file << ": ok, version " << rules.version() << ", " << rules.rules().size() << " rules, "
                << rules.features().size() << " features\n";
      warn_missing_rates(file, rules);
    } catch (const rules::RuleFileError& e) {
      print_rule_errors(e);
      status = 1;
    }
  }
  return status;
}

/// `rules backtest`: replays the stored history through a candidate rule file beside the
/// active one (rules.file of the configuration) and prints what would change. Writes nothing.
int backtest(const std::vector<std::string>& args) {
  std::string candidate, config_path, since = "1970-01-01T00:00:00Z", until = "9999-12-31T00:00:00Z", warmup;
  for (std::size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--rules") candidate = args[i + 1];
    else if (args[i] == "--since") since = args[i + 1];
    else if (args[i] == "--until") until = args[i + 1];
    else if (args[i] == "--warmup") warmup = args[i + 1];
    else if (args[i] == "--config") config_path = args[i + 1];
    else return ops::refuse("fraud-consumer: unknown argument '" + args[i] + "'\n" + kUsage);
  }
  auto time = [](const std::string& t) { return events::parse_rfc3339(t.size() == 10 ? t + "T00:00:00Z" : t); };
  auto from = time(since), to = time(until);
  if (candidate.empty() || args.size() % 2 || !from || !to)
    return ops::refuse(std::string("fraud-consumer: backtest needs --rules FILE; times are RFC 3339 or YYYY-MM-DD\n") +
                       kUsage);
  auto config = consumer::load_config(config_path, ops::process_environment(), consumer::ConfigUse::database_only);
  auto candidate_rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(candidate, config.limits.rules()));
  auto active_rules =
      std::make_shared<const rules::RuleSet>(rules::RuleSet::load(config.rules.file, config.limits.rules()));
  // Feature state needs the history before the period: by default the longest window.
  events::Timestamp lead = 86'400'000'000LL;
  for (const auto* set : {candidate_rules.get(), active_rules.get()})
    for (const auto& f : set->features()) lead = std::max(lead, f.window_us);
  if (!warmup.empty()) {
    auto w = rules::parse_duration(warmup);
    if (!w) return ops::refuse("fraud-consumer: --warmup takes a duration such as 12h or 200d\n");
    lead = *w;
  }
  rules::Backtest replay(candidate_rules, active_rules);
  store::StoredHistory visit;
  // Read whatever the rules: any rule may have been suppressed for an account.
  visit.lists = [&](rules::RuntimeLists lists) { replay.use_lists(std::move(lists)); };
  visit.pair_kinds = replay.first_seen_kinds();
  visit.pair_recorded = [&](const store::RecordedPair& p) {
    replay.recorded_pair(p.a, p.b, p.first, p.second, p.first_seq, p.first_at);
  };
  visit.event = [&](const store::LabelledEvent& e) {
    std::optional<rules::StoredDecision> stored;
    if (e.decision && e.rule_set_version) stored = rules::StoredDecision{*e.decision, *e.rule_set_version};
    replay.feed(e.event, e.is_fraud, e.event.occurred_at >= *from, stored, e.applied_seq, e.lists_as_of);
  };
  store::replay_stored_history(config.postgres.url, *from - lead, *to, visit);
  replay.report(std::cout);
  return 0;
}

// `store prune [--from YYYY-MM-DD]`: the history's day partitions kept to retention.days, and
// the dedup ids' generations rotated (store/retention.h); as a member of fraud_maintenance
// (postgres.maintenance_url), else as the tables' owner. Run it daily.
// --from also makes the partitions of older days, before a backfill of older events.
int prune(const consumer::Config& config, events::Timestamp from) {
  auto report =
      store::maintain_partitions(config.postgres.for_maintenance(),
                                 {config.retention.days, config.retention.days_ahead, from}, events::wall_clock_now());
  auto list = [](const std::vector<std::string>& names) {
    std::string all;
    for (const auto& n : names) all += (all.empty() ? "" : ",") + n;
    return all;
  };
  ops::log::info("partitions maintained", {{"retention_days", std::to_string(config.retention.days)},
                                           {"created", list(report.created)},
                                           {"dropped", list(report.dropped)},
                                           {"rows_moved", std::to_string(report.rows_moved)},
                                           {"rows_expired", std::to_string(report.rows_expired)},
                                           {"dedup_generation_rotated", report.dedup_rotated ? "true" : "false"}});
  return 0;
}

// The history's key-field indexes (migrations/0024): for the fields this configuration's rules
// read and those any replica registered; and who may add to its runtime lists, for how long
// (migrations/0026). A rules file that does not load leaves the registered fields only.
void apply_rules_file(const consumer::Config& config) {
  auto owner = config.postgres.for_migrations();
  auto fields = store::registered_key_fields(owner);
  try {
    auto rules = std::make_shared<const rules::RuleSet>(rules::RuleSet::load(config.rules.file, config.limits.rules()));
    store::record_list_policies(owner, rules->list_policies());
    ops::log::info("runtime list policies recorded", {{"lists", std::to_string(rules->list_policies().size())}});
    rules::FeatureEngine engine(rules);
    for (auto field : store::fields_read_by_key(engine))
      if (std::find(fields.begin(), fields.end(), field) == fields.end()) fields.push_back(field);
  } catch (const rules::RuleFileError& e) {
    ops::log::error(
        "the rules file does not load: its runtime lists' policies are not recorded, and only the "
        "registered key fields are indexed",
        {{"rules_file", config.rules.file}, {"error", e.what()}});
  }
  std::string built;
  for (auto field : store::build_key_indexes(owner, fields))
    built += (built.empty() ? "" : ",") + std::string(rules::to_string(field));
  ops::log::info("key indexes in place", {{"built", built}});
}

// As the tables' owner (postgres.migration_url); the service itself never runs DDL.
int migrate(const consumer::Config& config) {
  int applied =
      store::migrate(config.postgres.for_migrations(), store::embedded_migrations(), [](std::string_view name) {
        ops::log::info("migration applied", {{"migration", std::string(name)}});
      });
  ops::log::info("database is up to date", {{"applied", std::to_string(applied)}});
  store::record_retention(config.postgres.for_migrations(), config.retention.days);
  apply_rules_file(config);
  return 0;
}

/// POST /v1/decisions (consumer/decision_api.h): a desk with a connection and feature state of
/// its own, and a listener whose workers each wait for one request's group.
struct InlineDoor {
  InlineDoor(const consumer::Config& config, const std::string& name, std::shared_ptr<const rules::RuleSet> rules,
             prometheus::Registry& registry, consumer::ServiceMetrics& service_metrics)
      : metrics(registry), desk(config.postgres.url, config.kafka.group_id, name + "-inline",
                                {config.outbox.alerts_topic, config.outbox.dead_letter_topic}, std::move(rules),
                                service_metrics, static_cast<std::size_t>(config.decisions.max_group),
                                std::chrono::microseconds(config.decisions.group_interval_us), metrics.group_requests),
        server(config.decisions.listen, consumer::decision_api(desk, settings(config), metrics), kWorkers,
               /*keep_alive=*/true) {}

  static consumer::DecisionApiSettings settings(const consumer::Config& config) {
    const auto& d = config.decisions;
    auto fallback = d.fallback == "allow"   ? rules::Decision::allow
                    : d.fallback == "block" ? rules::Decision::block
                                            : rules::Decision::review;
    return {d.token,
            std::chrono::milliseconds(d.deadline_ms),
            fallback,
            config.limits.decode(),
            config.retention.days,
            d.event_source};
  }

  static constexpr std::size_t kWorkers = 64;  // one per connection the server takes at once
  consumer::DecisionMetrics metrics;
  consumer::DecisionDesk desk;
  ops::HttpServer server;  ///< last: destroyed first, while the desk its handlers wait on still lives
};

std::unique_ptr<InlineDoor> open_inline_door(const consumer::Config& config, const std::string& name,
                                             std::shared_ptr<const rules::RuleSet> rules,
                                             prometheus::Registry& registry, consumer::ServiceMetrics& metrics) {
  if (config.decisions.listen.empty()) return nullptr;
  return std::make_unique<InlineDoor>(config, name, std::move(rules), registry, metrics);
}

int run(const consumer::Config& config) {
  shutdown_timeout_seconds = static_cast<unsigned>(config.shutdown.timeout_seconds);
  std::signal(SIGALRM, shutdown_overran);
  std::signal(SIGHUP, request_reload);
  const auto& stop_requested = ops::stop_on_signals(arm_shutdown_alarm);
  setenv("PGCONNECT_TIMEOUT", "5", 0);  // a dead database must not hang a connection attempt
  auto name = replica_name();
  prometheus::Registry registry;
  consumer::ServiceMetrics metrics(registry);
  metrics.initialise(config.kafka.topics);
  consumer::RuleReloader reloader(config.rules.file, config.limits.rules(),
                                  std::chrono::milliseconds(config.rules.watch_interval_ms), reload_requests, metrics);
  auto rules = reloader.load_initial();
  consumer::HealthState health;
  health.out_of_group_since_ms = consumer::steady_ms();
  health.loop_heartbeat_ms = consumer::steady_ms();
  consumer::DatabaseProbe probe(config.postgres.url);
  ops::HttpServer server(config.metrics.listen,
                         consumer::operator_routes(registry, metrics, probe, health, config.health));

  consumer::BatchApplier applier(config.postgres.url, config.kafka.group_id, name,
                                 {config.outbox.alerts_topic, config.outbox.dead_letter_topic});
  applier.store().on_reconnect([&] { metrics.reconnects.Increment(); });
  // A first-seen kind's backfill runs inside a batch, for minutes on months of history: each
  // chunk it records shows the loop at work (/healthz), so it is not restarted and begun again.
  applier.store().on_progress([&] { health.loop_heartbeat_ms = consumer::steady_ms(); });
  auto callbacks = failpoints();
  consumer::BatchLoop* loop_ptr = nullptr;
  callbacks.between_batches = [&] { reloader.check(*loop_ptr); };
  consumer::BatchLoop loop(config.batch, config.limits, config.retention, applier, rules, metrics, health, callbacks);
  loop_ptr = &loop;
  auto inline_door = open_inline_door(config, name, rules, registry, metrics);
  if (inline_door) reloader.also_to([&](auto reloaded) { inline_door->desk.set_rules(std::move(reloaded)); });
  consumer::KafkaSource source(config.kafka, name, loop, metrics, health);
  ops::log::info("consumer started",
                 {{"replica", name},
                  {"rules", rules->version()},
                  {"group", config.kafka.group_id},
                  {"metrics_port", std::to_string(server.port())},
                  {"decisions_port", inline_door ? std::to_string(inline_door->server.port()) : std::string("off")}});
  loop.run(source, stop_requested);
  source.close();  // leave the group now, so its partitions move to the others at once
  const auto& c = loop.counters();
  ops::log::info("consumer stopped", {{"processed", std::to_string(c.processed)},
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
  if (command == "rules") {
    std::vector<std::string> files(argv + std::min(argc, 3), argv + argc);
    try {
      if (argc >= 3 && std::string(argv[2]) == "check") return check_rules(files);
      if (argc >= 3 && std::string(argv[2]) == "backtest") return backtest(files);
    } catch (const consumer::ConfigError& e) {
      return ops::refuse(std::string("fraud-consumer: configuration error: ") + e.what() + "\n");
    } catch (const rules::RuleFileError& e) {
      return print_rule_errors(e), 2;
    } catch (const std::exception& e) {
      return ops::refuse(std::string("fraud-consumer: ") + e.what() + "\n", 1);
    }
    return ops::refuse(kUsage);
  }
  int first_option = 2;
  // `dedup prune` is the command's name from before the store/ module: cron jobs keep it.
  if ((command == "store" || command == "dedup") && argc >= 3 && std::string(argv[2]) == "prune")
    command = "store prune", first_option = 3;
  std::optional<events::Timestamp> from;
  for (int i = first_option; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--config") && i + 1 < argc) config_path = argv[++i];
    else if (command == "store prune" && !std::strcmp(argv[i], "--from") && i + 1 < argc &&
             (from = events::parse_rfc3339(std::string(argv[i + 1]) + "T00:00:00Z")))
      ++i;
    else return ops::refuse(std::string("fraud-consumer: unknown argument '") + argv[i] + "'\n" + kUsage);
  }
  if (command != "run" && command != "migrate" && command != "store prune")
    return ops::refuse("fraud-consumer: unknown command '" + command + "'\n" + kUsage);

  consumer::Config config;
  try {
    config =
        consumer::load_config(config_path, ops::process_environment(),
                              command == "run" ? consumer::ConfigUse::service : consumer::ConfigUse::database_only);
  } catch (const consumer::ConfigError& e) {
    std::cerr << "fraud-consumer: configuration error: " << e.what() << "\n";
    return 2;
  }
  ops::log::set_level(config.log.level);
  try {
    if (command == "migrate") return migrate(config);
    if (command == "store prune") return prune(config, from.value_or(0));
    return run(config);
  } catch (const rules::RuleFileError& e) {
    std::cerr << "fraud-consumer: the rule file " << config.rules.file << " does not load:\n";
    print_rule_errors(e);
    return 2;
  } catch (const std::exception& e) {
    ops::log::error("fatal", {{"command", command}, {"error", e.what()}});
    return 1;
  }
}
