#include "consumer/kafka_source.h"

#include <librdkafka/rdkafkacpp.h>
#include <simdjson.h>

#include <set>
#include <stdexcept>

#include "ops/kafka.h"
#include "ops/log.h"

namespace fraud::consumer {

namespace log = ops::log;
namespace {

std::vector<TopicPartition> to_partitions(const std::vector<RdKafka::TopicPartition*>& list) {
  std::vector<TopicPartition> out;
  for (auto* tp : list) out.push_back({tp->topic(), tp->partition()});
  return out;
}

using ops::PartitionList;
using ops::set_property;

events::Record to_record(RdKafka::Message& m) {
  events::Record r;
  r.topic = m.topic_name();
  r.partition = m.partition();
  r.offset = m.offset();
  r.timestamp_ms = m.timestamp().timestamp;
  if (m.key_pointer()) r.key.emplace(static_cast<const char*>(m.key_pointer()), m.key_len());
  if (m.payload()) r.value.assign(static_cast<const char*>(m.payload()), m.len());
  if (RdKafka::Headers* headers = m.headers()) {
    for (const auto& h : headers->get_all()) {
      std::optional<std::string> value;
      if (h.value()) value.emplace(static_cast<const char*>(h.value()), h.value_size());
      r.headers.emplace_back(h.key(), std::move(value));
    }
  }
  return r;
}

}  // namespace

/// librdkafka calls these on the polling thread; they forward to the PartitionOwner.
struct KafkaSource::Callbacks : RdKafka::RebalanceCb, RdKafka::EventCb {
  Callbacks(PartitionOwner& o, ServiceMetrics& m, HealthState& h) : owner(o), metrics(m), health(h) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      assigned_once = true;
      std::vector<RdKafka::TopicPartition*> claimed, waiting;
      for (auto* tp : partitions) {
        auto offset = owner.on_assigned({tp->topic(), tp->partition()});
        // One not claimed yet starts paused at its first record, never at Kafka's committed
        // offset: the owner seeks it to the database's offset, and a late answer to an offset
        // lookup can only move it back, to records the owner drops by offset.
        tp->set_offset(offset ? *offset : RdKafka::Topic::OFFSET_BEGINNING);
        (offset ? claimed : waiting).push_back(tp);
      }
      auto* error = cooperative ? consumer->incremental_assign(partitions) : (consumer->assign(partitions), nullptr);
      report("assign", error);
      // A partition paused under an earlier assignment (fenced, or waiting out a database
      // retry) keeps librdkafka's pause across a revoke: a claimed one starts unpaused. One
      // not claimed yet waits paused until the owner claims it, seeks and resumes it.
      consumer->resume(claimed);
      consumer->pause(waiting);
      metrics.rebalances("assign").Increment();
      log::info("partitions assigned", {{"count", std::to_string(partitions.size())}});
      return;
    }
    auto taken = to_partitions(partitions);
    bool lost = consumer->assignment_lost();
    metrics.rebalances(lost ? "lost" : "revoke").Increment();
    if (lost) owner.on_lost(taken);
    else owner.on_revoked(taken);
    for (const auto& tp : taken) metrics.forget_partition(tp.topic, tp.partition);
    auto* error = cooperative ? consumer->incremental_unassign(partitions) : (consumer->unassign(), nullptr);
    report("unassign", error);
    log::info("partitions revoked", {{"count", std::to_string(partitions.size())}});
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) set_brokers_up(0);
        log::warn("kafka error", {{"error", RdKafka::err2str(event.err())}, {"detail", event.str()}});
        break;
      case RdKafka::Event::EVENT_STATS: read_statistics(event.str()); break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING)
          log::warn("kafka log", {{"facility", event.fac()}, {"detail", event.str()}});
        break;
      default: break;
    }
  }

  static void report(const char* what, RdKafka::Error* error) {
    if (!error) return;
    log::error("kafka rebalance step failed", {{"step", what}, {"error", error->str()}});
    delete error;
  }

  void set_brokers_up(int count) {
    metrics.brokers_up.Set(count);
    health.brokers_up = count > 0;
  }

  // librdkafka's statistics JSON: brokers' states, and per partition the group's lag and
  // committed offset (-1 where unknown, and partition -1 is internal).
  void read_statistics(const std::string& json) {
    simdjson::dom::element doc;
    if (stats_parser.parse(json).get(doc) != simdjson::SUCCESS) return;
    std::set<std::int64_t> up;  // a broker can appear twice: as itself and as the group coordinator
    simdjson::dom::object brokers;
    if (doc["brokers"].get(brokers) == simdjson::SUCCESS)
      for (auto [name, broker] : brokers) {
        std::int64_t node = -1;
        std::string_view state;
        if (broker["nodeid"].get(node) == simdjson::SUCCESS && node >= 0 &&
            broker["state"].get(state) == simdjson::SUCCESS && state == "UP")
          up.insert(node);
      }
    set_brokers_up(static_cast<int>(up.size()));
    simdjson::dom::object topics;
    if (doc["topics"].get(topics) != simdjson::SUCCESS) return;
    for (auto [topic, t] : topics) {
      simdjson::dom::object partitions;
      if (t["partitions"].get(partitions) != simdjson::SUCCESS) continue;
      for (auto [key, p] : partitions) {
        std::int64_t partition = -1, lag = -1, committed = -1;
        if (p["partition"].get(partition) || partition < 0) continue;
        if (!p["consumer_lag"].get(lag) && lag >= 0)
          metrics.consumer_lag(std::string(topic), static_cast<std::int32_t>(partition)).Set(static_cast<double>(lag));
        if (!p["committed_offset"].get(committed) && committed >= 0)
          metrics.committed_offset(std::string(topic), static_cast<std::int32_t>(partition))
              .Set(static_cast<double>(committed));
      }
    }
  }

  PartitionOwner& owner;
  ServiceMetrics& metrics;
  HealthState& health;
  simdjson::dom::parser stats_parser;
  bool assigned_once = false;  ///< a first assignment arrived (see ~KafkaSource)
};

KafkaSource::KafkaSource(const KafkaConfig& config, const std::string& client_id, PartitionOwner& owner,
                         ServiceMetrics& metrics, HealthState& health)
    : callbacks_(std::make_unique<Callbacks>(owner, metrics, health)), health_(health) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  set_property(*conf, "client.id", client_id);
  set_property(*conf, "statistics.interval.ms", "5000");  // lag, committed offsets, brokers for metrics
  set_property(*conf, "auto.offset.reset", "earliest");
  set_property(*conf, "partition.assignment.strategy", "cooperative-sticky");
  // librdkafka prefetches up to 64 MB by default, which is most of a replica's memory on a
  // backlog; 16 MB is still seconds of records at full speed. A property overrides it.
  set_property(*conf, "queued.max.messages.kbytes", "16384");
  // It also aims for 100,000 records per partition, each keeping its fetch response in
  // memory: on a backlog of a million keys' events, a peak of 272 MB against 247 with 10,000
  // (bench/keys, three runs each, at 8d5fb60's entries). Ten batches of the default size per
  // partition keep the loop as busy.
  set_property(*conf, "queued.min.messages", "10000");
  for (const auto& [name, value] : config.properties) set_property(*conf, name, value);
  // Not overridable (config validation refuses them): offsets are committed by hand, and
  // only after the database transaction that wrote them committed.
  set_property(*conf, "bootstrap.servers", config.bootstrap_servers);
  set_property(*conf, "group.id", config.group_id);
  set_property(*conf, "enable.auto.commit", "false");
  set_property(*conf, "enable.auto.offset.store", "false");
  std::string error;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(callbacks_.get()), error) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", static_cast<RdKafka::EventCb*>(callbacks_.get()), error) != RdKafka::Conf::CONF_OK)
    throw std::runtime_error("kafka callbacks: " + error);
  consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer_) throw std::runtime_error("kafka consumer: " + error);
  if (auto err = consumer_->subscribe(config.topics); err != RdKafka::ERR_NO_ERROR)
    throw std::runtime_error("kafka subscribe: " + RdKafka::err2str(err));
}

KafkaSource::~KafkaSource() {
  try {
    close();
  } catch (const std::exception& e) {
    log::error("closing the kafka consumer failed", {{"error", e.what()}});
  }
}

std::optional<events::Record> KafkaSource::poll(std::chrono::milliseconds timeout) {
  check_membership();
  std::unique_ptr<RdKafka::Message> m(consumer_->consume(static_cast<int>(timeout.count())));
  switch (m->err()) {
    case RdKafka::ERR_NO_ERROR: return to_record(*m);
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF: return std::nullopt;
    default: log::warn("kafka consume error", {{"error", m->errstr()}}); return std::nullopt;
  }
}

// Readiness wants to know whether this replica is in the group, and since when it is not.
void KafkaSource::check_membership() {
  auto now = steady_ms();
  if (now < next_membership_check_ms_) return;
  next_membership_check_ms_ = now + 1000;
  bool was_in_group = in_group_;
  in_group_ = !consumer_->memberid().empty();
  if (!in_group_ && was_in_group) health_.out_of_group_since_ms = now;
  health_.in_group = in_group_;
}

void KafkaSource::commit(const TopicPartition& tp, std::int64_t next_offset) {
  PartitionList list;
  list.items.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition, next_offset));
  // Asynchronous: the database holds the truth; this copy only feeds lag tooling.
  if (auto err = consumer_->commitAsync(list.items); err != RdKafka::ERR_NO_ERROR)
    log::warn("kafka offset commit failed", {{"topic", tp.topic}, {"error", RdKafka::err2str(err)}});
}

void KafkaSource::pause(const TopicPartition& tp) {
  PartitionList list;
  list.items.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition));
  consumer_->pause(list.items);
}

void KafkaSource::resume(const TopicPartition& tp) {
  PartitionList list;
  list.items.push_back(RdKafka::TopicPartition::create(tp.topic, tp.partition));
  consumer_->resume(list.items);
}

bool KafkaSource::seek(const TopicPartition& tp, std::int64_t offset) {
  std::unique_ptr<RdKafka::TopicPartition> target(RdKafka::TopicPartition::create(
      tp.topic, tp.partition, offset == kFromBeginning ? RdKafka::Topic::OFFSET_BEGINNING : offset));
  // Bounded: waits for the consumer to take the new position, so the resume that follows
  // fetches from it.
  auto err = consumer_->seek(*target, 5000);
  if (err != RdKafka::ERR_NO_ERROR)
    log::warn("kafka seek failed",
              {{"topic", tp.topic}, {"partition", std::to_string(tp.partition)}, {"error", RdKafka::err2str(err)}});
  return err == RdKafka::ERR_NO_ERROR;
}

void KafkaSource::close() {
  if (closed_ || !consumer_) return;
  closed_ = true;
  if (!callbacks_->assigned_once) {
    // librdkafka 2.0.2 aborts when a cooperative-sticky consumer is closed before its first
    // assignment arrived (its issue #4312, fixed in 2.3.0): its group's teardown destroys
    // assignor state that does not exist yet. Such a consumer owns nothing, so it is neither
    // closed nor destroyed; the process is ending, and the group drops the member after
    // session.timeout.ms. The handle is kept reachable on purpose (not a leak).
    log::info("leaving without closing the consumer: it never received an assignment");
    using Kept = std::vector<std::pair<std::unique_ptr<RdKafka::KafkaConsumer>, std::unique_ptr<Callbacks>>>;
    static auto* kept = new Kept;  // never destroyed, not even by exit()'s static destructors
    kept->emplace_back(std::move(consumer_), std::move(callbacks_));
    return;
  }
  consumer_->close();  // runs the rebalance callback for what is still assigned
}

}  // namespace fraud::consumer
