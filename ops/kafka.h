#pragma once
// What every Kafka client of the project does with librdkafka's C++ API the same way: set a
// property or fail with its name, and own the raw pointers the API hands out. Header-only:
// a target that includes it links librdkafka itself (ops does not).

#include <librdkafka/rdkafkacpp.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace fraud::ops {

/// Sets a librdkafka property; throws naming the property when librdkafka refuses it.
inline void set_property(RdKafka::Conf& conf, const std::string& name, const std::string& value) {
  std::string error;
  if (conf.set(name, value, error) != RdKafka::Conf::CONF_OK)
    throw std::runtime_error("kafka property " + name + ": " + error);
}

/// Owns the TopicPartition objects librdkafka's C++ API hands out as raw pointers.
struct PartitionList {
  std::vector<RdKafka::TopicPartition*> items;
  PartitionList() = default;
  PartitionList(const PartitionList&) = delete;
  PartitionList& operator=(const PartitionList&) = delete;
  ~PartitionList() { RdKafka::TopicPartition::destroy(items); }
};

}  // namespace fraud::ops
