#pragma once
// Decoding a Kafka record into a TransactionRecorded event, whichever envelope carries it
// (schemas/transaction-recorded/README.md): plain JSON, Debezium's outbox EventRouter, CloudEvents in
// binary or structured mode. Pure: bytes in, an event or a reason out.

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::events {

/// One Kafka record header; a header may carry no value at all.
struct Header {
  std::string_view name;
  std::optional<std::string_view> value;
};

/// The parts of a Kafka record that decoding reads. Views: the caller owns the bytes.
struct RecordView {
  std::optional<std::string_view> key;
  std::span<const Header> headers;
  std::string_view value;
};

enum class Envelope { plain, debezium_outbox, cloudevents_binary, cloudevents_structured };

/// The text of an envelope kind, for logs and rejected_events.
const char* to_string(Envelope envelope);

/// Bounds on untrusted input, enforced before and while parsing.
struct DecodeLimits {
  std::size_t max_record_bytes = 1 << 20;  ///< a record's value, before parsing
  std::size_t max_json_depth = 64;         ///< nesting of objects and arrays
  std::size_t max_string_bytes = 1024;     ///< a free-text field: names, cities, attribute values
};

/// An event, or the reason the record is not one (it names the field at fault).
struct Decoded {
  Envelope envelope = Envelope::plain;
  std::optional<Event> event;
  std::string error;
};

/// Decodes records one at a time. Holds a reusable JSON parser, so keep one per thread.
class Decoder {
 public:
  explicit Decoder(DecodeLimits limits = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  /// Never throws for bad input: a bad record comes back with `error` set.
  Decoded decode(const RecordView& record);

 private:
  struct Parser;
  std::unique_ptr<Parser> parser_;
};

}  // namespace fraud::events
