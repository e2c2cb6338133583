// bench-load: publishes synthetic TransactionRecorded events to a topic, as fast as it can or
// at a fixed rate, for the benchmark harness (bench/run). Producing is not what is measured.
//
//   bench-load --topic T --events N [--rate R] [--duplicates 0.1] [--accounts 20000 (0: one per event)] [--seed S]
//
// Events carry no recorded_at, so the consumer measures end-to-end latency from the Kafka
// timestamp (bench/run makes it the broker's append time). FRAUD_KAFKA_BOOTSTRAP_SERVERS
// says where.

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "ops/cli.h"
#include "ops/kafka.h"

using namespace fraud;

namespace {

/// Event `i` of this load; ids are unique per topic and seed, so loads never collide.
/// With `accounts` 0, every event has an account (and card and device) of its own.
std::string event(const std::string& id_prefix, long i, long accounts, std::mt19937_64& random) {
  auto account =
      "acc-" + std::to_string(accounts > 0 ? static_cast<long>(random() % static_cast<unsigned long>(accounts)) : i);
  auto minute = i / 1000;  // event time advances a minute every thousand events
  char when[40];
  std::snprintf(when, sizeof when, "2026-11-%02ldT%02ld:%02ld:%02ldZ", 1 + minute / 1440 % 28, minute / 60 % 24,
                minute % 60, i % 60);
  long cents = static_cast<long>(random() % 30000) + 100;
  if (i % 500 == 0) cents = 1250000;  // now and then a large one
  char amount[32];
  std::snprintf(amount, sizeof amount, "%ld.%02ld", cents / 100, cents % 100);
  auto n = std::to_string(i);
  return R"({"event_id":")" + id_prefix + n + R"(","event_type":"TransactionRecorded","occurred_at":")" + when +
         R"(","transaction_id":")" + id_prefix + "tx-" + n + R"(","account_id":")" + account +
         R"(","kind":"purchase","direction":"debit","amount":{"value":")" + amount +
         R"(","currency":"EUR"},"channel":"card_present","merchant":{"id":"m-)" + std::to_string(i % 300) +
         R"(","mcc":"5411","country":"DE"},"card":{"fingerprint":"card-)" + account + R"(","bin":"411111"},)" +
         R"("device":{"id":"dev-)" + account +
         R"("},"location":{"country":"DE","city":"Berlin","lat":52.52,"lon":13.405}})";
}

}  // namespace

int main(int argc, char** argv) {
  std::string topic;
  long events = 0, accounts = 20000;
  double rate = 0, duplicates = 0.1;
  unsigned long seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--topic") topic = v;
    else if (flag == "--events") events = std::stol(v);
    else if (flag == "--rate") rate = std::stod(v);
    else if (flag == "--duplicates") duplicates = std::stod(v);
    else if (flag == "--accounts") accounts = std::stol(v);  // 0: a new account for every event
    else if (flag == "--seed") seed = std::stoul(v);
    else return ops::refuse("bench-load: unknown flag " + flag + "\n");
  }
  const char* bootstrap = std::getenv("FRAUD_KAFKA_BOOTSTRAP_SERVERS");
  if (topic.empty() || events <= 0 || !bootstrap) return ops::refuse("usage: see bench/load.cpp\n");
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  ops::set_property(*conf, "bootstrap.servers", bootstrap);
  // Paced, it hands the broker what is due every 5 ms, as a relay that reads its outbox in
  // batches does: one produce request per event (linger 0) took enough of the two cores to
  // hold the replica to 3,400 events/s at 5,000 offered (bench/run, 2026-11-28).
  ops::set_property(*conf, "linger.ms", rate > 0 ? "5" : "20");
  ops::set_property(*conf, "compression.type", "lz4");
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (!producer) return ops::refuse("bench-load: " + error + "\n", 1);
  std::mt19937_64 random(seed);
  std::bernoulli_distribution again(duplicates);
  auto start = std::chrono::steady_clock::now();
  long sent = 0;
  auto send = [&](const std::string& key, const std::string& value) {
    while (producer->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                             const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0,
                             nullptr) == RdKafka::ERR__QUEUE_FULL)
      producer->poll(10);
    producer->poll(0);
    ++sent;
  };
  for (long i = 0; i < events; ++i) {
    if (rate > 0) {  // pace: never ahead of the target rate
      auto due = start + std::chrono::duration<double>(static_cast<double>(sent) / rate);
      std::this_thread::sleep_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
    }
    auto value = event(topic + "-" + std::to_string(seed) + "-", i, accounts, random);
    auto key = value.substr(value.find("acc-"), value.find('"', value.find("acc-")) - value.find("acc-"));
    send(key, value);
    if (again(random)) send(key, value);  // a redelivery, as an outbox relay makes them
  }
  producer->flush(60000);
  std::cout << sent << "\n";
  return 0;
}
