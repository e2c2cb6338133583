// outbox-relay: publishes an outbox table to Kafka, at least once.
//
//   outbox-relay run [--preset service|bank] [table and column options] [--delete]
//                    [--batch-rows N] [--metrics-listen HOST:PORT]
//                    [--duplicate-rate R] [--crash-after-batches N]   (fault injection)
//   outbox-relay republish --from ID --to ID [--preset …]              (send a range again)
//
// The database and broker come from FRAUD_POSTGRES_URL and FRAUD_KAFKA_BOOTSTRAP_SERVERS
// (never from the command line, where passwords would show in `ps`); librdkafka properties
// from FRAUD_KAFKA_PROPERTIES_<NAME>, dots written as underscores, as for fraud-consumer.
// Exit status: 0 done, 1 failed, 2 bad command line.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <thread>

#include "ops/cli.h"
#include "ops/environment.h"
#include "ops/http_server.h"
#include "ops/log.h"
#include "ops/stop_signal.h"
#include "outbox/relay.h"

namespace {

using namespace fraud;

constexpr const char* kUsage =
    "usage: outbox-relay run [--preset service|bank] [--table T --id-column C --topic-column C --key-column C\n"
    "                        --headers-column C --payload-column C --created-column C --sent-column C]\n"
    "                        [--delete] [--batch-rows N] [--metrics-listen HOST:PORT]\n"
    "                        [--duplicate-rate R] [--crash-after-batches N]\n"
    "       outbox-relay republish --from ID --to ID [--preset …]\n"
    "FRAUD_POSTGRES_URL and FRAUD_KAFKA_BOOTSTRAP_SERVERS say where the database and broker are.\n";

/// The bank simulator's outbox, as the core banking system lays it out.
outbox::OutboxTable bank_table() {
  return {"bank_outbox", "id", "topic", "aggregate_id", "headers", "payload", "created_at", "published_at"};
}

struct Options {
  std::string command;
  outbox::RelayConfig relay;
  std::string metrics_listen;
  long from = 0, to = -1;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool parse(int argc, char** argv, Options& o) {
  if (argc < 2) return false;
  o.command = argv[1];
  o.relay.postgres_url = env("FRAUD_POSTGRES_URL");
  o.relay.bootstrap_servers = env("FRAUD_KAFKA_BOOTSTRAP_SERVERS");
  auto& t = o.relay.table;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--delete") {
      o.relay.delete_sent = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    std::string v = argv[++i];
    if (flag == "--preset") {
      if (v == "bank") t = bank_table();
      else if (v != "service") return false;
    } else if (flag == "--table") t.table = v;
    else if (flag == "--id-column") t.id = v;
    else if (flag == "--topic-column") t.topic = v;
    else if (flag == "--key-column") t.key = v;
    else if (flag == "--headers-column") t.headers = v;
    else if (flag == "--payload-column") t.payload = v;
    else if (flag == "--created-column") t.created_at = v;
    else if (flag == "--sent-column") t.sent_at = v;
    else if (flag == "--batch-rows") o.relay.batch_rows = std::stoi(v);
    else if (flag == "--metrics-listen") o.metrics_listen = v;
    else if (flag == "--duplicate-rate") o.relay.duplicate_rate = std::stod(v);
    else if (flag == "--crash-after-batches") o.relay.crash_after_batches = std::stol(v);
    else if (flag == "--from") o.from = std::stol(v);
    else if (flag == "--to") o.to = std::stol(v);
    else return false;
  }
  return (o.command == "run" || o.command == "republish") && !o.relay.postgres_url.empty() &&
         (o.command == "republish" || !o.relay.bootstrap_servers.empty());
}

int run(Options& o) {
  const auto& stop_requested = ops::stop_on_signals();
  prometheus::Registry registry;
  auto& published = prometheus::BuildCounter()
                        .Name("fraud_outbox_published_total")
                        .Help("Outbox rows published and acknowledged")
                        .Register(registry)
                        .Add({{"table", o.relay.table.table}});
  auto& pending = prometheus::BuildGauge()
                      .Name("fraud_outbox_pending_rows")
                      .Help("Outbox rows not yet published")
                      .Register(registry)
                      .Add({{"table", o.relay.table.table}});
  auto& latency =
      prometheus::BuildHistogram()
          .Name("fraud_outbox_publish_latency_seconds")
          .Help("From the row's creation to the broker's acknowledgement")
          .Register(registry)
          .Add({{"table", o.relay.table.table}},
               prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  // Rows the producer or broker refused for their size or content: left unpublished and
  // skipped (relay.cpp, "Rows that cannot be published"); any increase needs an operator.
  auto& unpublishable = prometheus::BuildCounter()
                            .Name("fraud_outbox_unpublishable_rows_total")
                            .Help("Outbox rows refused for their size or content, left unpublished")
                            .Register(registry)
                            .Add({{"table", o.relay.table.table}});
  outbox::RelayStats stats;
  stats.observe_latency = [&](double s) { latency.Observe(s); };
  stats.on_published = [&](std::size_t n) { published.Increment(static_cast<double>(n)); };
  stats.on_pending = [&](std::int64_t n) { pending.Set(static_cast<double>(n)); };
  stats.on_unpublishable = [&] { unpublishable.Increment(); };
  std::unique_ptr<ops::HttpServer> server;
  if (!o.metrics_listen.empty())
    server = std::make_unique<ops::HttpServer>(
        o.metrics_listen, std::vector<std::pair<std::string, ops::HttpHandler>>{
                              {"/metrics",
                               [&] {
                                 return ops::HttpResponse{200,
                                                          prometheus::TextSerializer().Serialize(registry.Collect()),
                                                          "text/plain; version=0.0.4; charset=utf-8"};
                               }},
                              {"/healthz", [] {
                                 return ops::HttpResponse{200, "ok\n"};
                               }}});
  outbox::Relay relay(o.relay, stats);
  ops::log::info("outbox relay started", {{"table", o.relay.table.table}});
  relay.run(stop_requested);
  ops::log::info("outbox relay stopped", {{"published", std::to_string(stats.published.load())},
                                          {"duplicates_sent", std::to_string(stats.duplicates_sent.load())},
                                          {"unpublishable", std::to_string(stats.unpublishable.load())}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    if (!parse(argc, argv, options)) return ops::refuse(kUsage);
  } catch (const std::exception&) {
    return ops::refuse(kUsage);
  }
  try {
    if (options.command == "republish") {
      auto n = outbox::Relay::republish(options.relay.postgres_url, options.relay.table, options.from, options.to);
      std::cout << n << " rows will be published again\n";
      return 0;
    }
    // FRAUD_KAFKA_PROPERTIES_MESSAGE_MAX_BYTES=… sets message.max.bytes, as for fraud-consumer.
    // The relay sets bootstrap.servers and enable.idempotence after these, so they cannot be
    // turned off this way.
    options.relay.kafka_properties = ops::kafka_properties(ops::process_environment());
    return run(options);
  } catch (const std::exception& e) {
    ops::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
}
