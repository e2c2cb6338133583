#include "consumer/kafka_source.h"

#include <librdkafka/rdkafkacpp.h>

#include <stdexcept>

#include "consumer/log.h"

namespace fraud::consumer {
namespace {

/// Owns the TopicPartition objects librdkafka's C++ API hands out as raw pointers.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> items;
  PartitionList() = default;
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
  ~PartitionList() { RdKafka::TopicPartition::destroy(items); }
};

std::vector<TopicPartition> to_partitions(const std::vector<RdKafka::TopicPartition*>& list) {
  std::vector<TopicPartition> out;
  for (auto* tp : list) out.push_back({tp->topic(), tp->partition()});
  return out;
}

void set(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string error;
  if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK)
    throw std::runtime_error("kafka property " + name + ": " + error);
}

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
  explicit Callbacks(PartitionOwner& o) : owner(o) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (auto* tp : partitions) {
        auto offset = owner.on_assigned({tp->topic(), tp->partition()});
        tp->set_offset(offset ? *offset : RdKafka::Topic::OFFSET_INVALID);
      }
      auto* error = cooperative ? consumer->incremental_assign(partitions) : (consumer->assign(partitions), nullptr);
      report("assign", error);
      log::info("partitions assigned", {{"count", std::to_string(partitions.size())}});
      return;
    }
    auto lost = to_partitions(partitions);
    if (consumer->assignment_lost()) owner.on_lost(lost);
    else owner.on_revoked(lost);
    auto* error = cooperative ? consumer->incremental_unassign(partitions) : (consumer->unassign(), nullptr);
    report("unassign", error);
    log::info("partitions revoked", {{"count", std::to_string(partitions.size())}});
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        log::warn("kafka error", {{"error", RdKafka::err2str(event.err())}, {"detail", event.str()}});
        break;
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

  PartitionOwner& owner;
};

KafkaSource::KafkaSource(const KafkaConfig& config, const std::string& client_id, PartitionOwner& owner)
    : callbacks_(std::make_unique<Callbacks>(owner)) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  set(*conf, "client.id", client_id);
  set(*conf, "auto.offset.reset", "earliest");
  set(*conf, "partition.assignment.strategy", "cooperative-sticky");
  for (const auto& [name, value] : config.properties) set(*conf, name, value);
  // Not overridable (config validation refuses them): offsets are committed by hand, and
  // only after the database transaction that wrote them committed.
  set(*conf, "bootstrap.servers", config.bootstrap_servers);
  set(*conf, "group.id", config.group_id);
  set(*conf, "enable.auto.commit", "false");
  set(*conf, "enable.auto.offset.store", "false");
  std::string error;
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(callbacks_.get()), error) != RdKafka::Conf::CONF_OK ||
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
  std::unique_ptr<RdKafka::Message> m(consumer_->consume(static_cast<int>(timeout.count())));
  switch (m->err()) {
    case RdKafka::ERR_NO_ERROR: return to_record(*m);
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF: return std::nullopt;
    default:
      log::warn("kafka consume error", {{"error", m->errstr()}});
      return std::nullopt;
  }
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

void KafkaSource::close() {
  if (closed_ || !consumer_) return;
  closed_ = true;
  consumer_->close();  // runs the rebalance callback for what is still assigned
}

}  // namespace fraud::consumer
