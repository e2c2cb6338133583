#pragma once
// A Kafka record as it arrived, owned: what the consumer hands to decoding and what a
// rejected record keeps for repair.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "events/decode.h"

namespace fraud::events {

struct Record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;  ///< the broker's append time, or the producer's
  std::optional<std::string> key;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::string value;

  /// Decodes this record with `decoder`.
  Decoded decode(Decoder& decoder) const {
    std::vector<Header> views;
    views.reserve(headers.size());
    for (const auto& [name, bytes] : headers) views.push_back({name, bytes});
    return decoder.decode({key, views, value});
  }
};

}  // namespace fraud::events
