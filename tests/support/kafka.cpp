#include "tests/support/kafka.h"

#include <doctest/doctest.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <stdexcept>

#include "tests/support/services.h"
#include "tests/support/wait.h"

namespace fraud::testing {
namespace {

using namespace std::chrono_literals;

struct KafkaDeleter {
  void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
template <typename T>
using KafkaPtr = std::unique_ptr<T, KafkaDeleter>;

KafkaPtr<rd_kafka_t> client(rd_kafka_type_t type, const std::string& bootstrap) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* name, const char* value) {
    if (rd_kafka_conf_set(conf, name, value, error, sizeof error) != RD_KAFKA_CONF_OK) throw std::runtime_error(error);
  };
  set("bootstrap.servers", bootstrap.c_str());
  if (type == RD_KAFKA_PRODUCER) set("enable.idempotence", "true");
  if (type == RD_KAFKA_CONSUMER) {  // librdkafka's assign() needs a group, though none is joined
    set("group.id", unique_name("reader").c_str());
    set("enable.auto.commit", "false");
  }
  rd_kafka_t* k = rd_kafka_new(type, conf, error, sizeof error);
  if (!k) throw std::runtime_error(std::string("kafka client: ") + error);
  return KafkaPtr<rd_kafka_t>(k);
}

/// A record as the broker returned it, headers and all.
StoredRecord stored(rd_kafka_message_t& m) {
  StoredRecord record{m.partition, m.offset, std::string(static_cast<const char*>(m.payload), m.len), {}};
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return record;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    record.headers.emplace_back(
        name, value ? std::optional<std::string>(std::string(static_cast<const char*>(value), size)) : std::nullopt);
  return record;
}

}  // namespace

void create_topic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto admin = client(RD_KAFKA_PRODUCER, bootstrap);
  char error[512];
  KafkaPtr<rd_kafka_NewTopic_t> new_topic(rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, error, sizeof error));
  REQUIRE_MESSAGE(new_topic, error);
  KafkaPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(admin.get()));
  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(admin.get(), topics, 1, nullptr, queue.get());
  KafkaPtr<rd_kafka_event_t> event(rd_kafka_queue_poll(queue.get(), 30000));
  REQUIRE_MESSAGE(event, "no answer to CreateTopics within 30 s");
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(result, &count);
  REQUIRE(count == 1);
  auto err = rd_kafka_topic_result_error(results[0]);
  REQUIRE_MESSAGE((err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS),
                  rd_kafka_err2str(err));
  // Metadata reaches every client a little later; wait until this one sees all partitions.
  REQUIRE(wait_until(30s, [&] { return high_watermarks(bootstrap, topic, partitions).size() == size_t(partitions); }));
}

std::map<std::int32_t, std::int64_t> high_watermarks(const std::string& bootstrap, const std::string& topic,
                                                     int partitions) {
  auto consumer = client(RD_KAFKA_CONSUMER, bootstrap);
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &low, &high, 5000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
      out[p] = high;
  }
  return out;
}

void produce(const std::string& bootstrap, const std::string& topic, const std::vector<OutgoingRecord>& records) {
  auto producer = client(RD_KAFKA_PRODUCER, bootstrap);
  std::string first_error;
  for (const auto& r : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers)
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                    RD_KAFKA_V_PARTITION(r.partition < 0 ? RD_KAFKA_PARTITION_UA : r.partition),
                                    RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(producer.get(), 100);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // the message owns the headers now
    rd_kafka_headers_destroy(headers);
    if (first_error.empty()) first_error = rd_kafka_err2str(err);
  }
  REQUIRE_MESSAGE(first_error.empty(), "produce failed: " << first_error);
  REQUIRE(rd_kafka_flush(producer.get(), 60000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

std::vector<StoredRecord> read_topic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto highs = high_watermarks(bootstrap, topic, partitions);
  auto consumer = client(RD_KAFKA_CONSUMER, bootstrap);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  auto err = rd_kafka_assign(consumer.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  std::int64_t expected = 0;
  for (auto [p, high] : highs) expected += high;
  std::vector<StoredRecord> out;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (static_cast<std::int64_t>(out.size()) < expected && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 500);
    if (!m) continue;
    if (!m->err) out.push_back(stored(*m));
    rd_kafka_message_destroy(m);
  }
  REQUIRE(static_cast<std::int64_t>(out.size()) == expected);
  rd_kafka_consumer_close(consumer.get());
  return out;
}

}  // namespace fraud::testing
