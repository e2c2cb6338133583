#pragma once
// How a fuzzer's bytes become a Kafka record: header lines, a blank line, then the value,
//
//   ce_id=abc
//   ce_source=bank
//   content-type          (a header without a value)
//
//   {"event_id": ...}
//
// so that one input can reach every envelope (they are told apart by their headers). Input
// without a blank line is all value, with no headers. The seed corpus is written in this form
// from schemas/transaction-recorded/examples/envelopes.jsonl by fuzz/seeds.py.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "events/decode.h"

namespace fraud::fuzz {

struct FuzzRecord {
  std::vector<events::Header> headers;
  events::RecordView view() const { return {std::nullopt, headers, value}; }
  std::string_view value;
};

inline FuzzRecord split_record(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FuzzRecord record;
  auto blank = input.find("\n\n");
  if (blank == std::string_view::npos) {
    record.value = input;
    return record;
  }
  record.value = input.substr(blank + 2);
  std::string_view head = input.substr(0, blank);
  while (!head.empty()) {
    auto end = head.find('\n');
    std::string_view line = head.substr(0, end);
    head = end == std::string_view::npos ? std::string_view{} : head.substr(end + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) record.headers.push_back({line, std::nullopt});
    else record.headers.push_back({line.substr(0, eq), line.substr(eq + 1)});
  }
  return record;
}

}  // namespace fraud::fuzz
