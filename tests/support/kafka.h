#pragma once
// Topics on the local broker: created, produced to, and read back to check what reached them.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fraud::testing {

/// Creates `topic` with `partitions` partitions and waits until the broker confirms it.
void create_topic(const std::string& bootstrap, const std::string& topic, int partitions);

/// The high watermark (next offset to be written) of each partition of `topic`.
std::map<std::int32_t, std::int64_t> high_watermarks(const std::string& bootstrap, const std::string& topic,
                                                     int partitions);

/// One record to produce.
struct OutgoingRecord {
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::int32_t partition = -1;  ///< -1: the partitioner picks one by key
};

/// Produces every record (keyed, so one key stays in one partition, in order) and waits until
/// the broker acknowledged them all.
void produce(const std::string& bootstrap, const std::string& topic, const std::vector<OutgoingRecord>& records);

/// One record as read back from a topic.
struct StoredRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string value;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;  ///< a null value: none
};

/// Every record of `topic`, read from the beginning to the high watermarks.
std::vector<StoredRecord> read_topic(const std::string& bootstrap, const std::string& topic, int partitions);

}  // namespace fraud::testing
