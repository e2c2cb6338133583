#pragma once
// The body of a TransactionRecorded event, whichever envelope carried it: its fields read,
// typed and bounded, with a reason that names the field at fault. Internal to events/:
// decode.cpp unwraps the envelope and hands the body here.

#include <simdjson.h>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::events::detail {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

/// Thrown inside decoding only; Decoder::decode turns it into Decoded::error.
struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void bad(const std::string& reason) { throw BadRecord(reason); }

/// "an array", "a string", …: what a JSON value is, for a reason.
const char* type_name(element_type type);

/// At most 40 bytes of `text` for a reason, cut on a character boundary. Whatever bytes it
/// keeps, Decoder::decode makes the whole reason storable text before returning it.
std::string excerpt(std::string_view text);

/// Reads typed members of one JSON object, naming each by its path in errors.
class Fields {
 public:
  /// `max_text` bounds every free-text member (names, cities, attribute values); identifiers
  /// and codes have tighter bounds of their own from the schema.
  Fields(object obj, std::string prefix, std::size_t max_text)
      : obj_(obj), prefix_(std::move(prefix)), max_text_(max_text) {}

  std::optional<element> find(std::string_view key) const {
    element value;
    if (obj_.at_key(key).get(value) != simdjson::SUCCESS || value.is_null()) return std::nullopt;
    return value;
  }

  std::string path(std::string_view key) const { return prefix_ + std::string(key); }

  std::optional<std::string_view> text(std::string_view key) const { return text(key, max_text_); }

  std::optional<std::string_view> text(std::string_view key, std::size_t max_len) const {
    auto value = find(key);
    if (!value) return std::nullopt;
    std::string_view s;
    if (value->get(s) != simdjson::SUCCESS) bad(path(key) + ": expected a string, got " + type_name(value->type()));
    if (s.size() > max_len) bad(path(key) + ": longer than " + std::to_string(max_len) + " bytes");
    if (s.find('\0') != std::string_view::npos) bad(path(key) + ": contains a NUL character");
    return s;
  }

  std::string_view required_text(std::string_view key, std::size_t max_len = 128) const {
    auto s = text(key, max_len);
    if (!s) bad("missing required field '" + path(key) + "'");
    if (s->empty()) bad(path(key) + ": must not be empty");
    return *s;
  }

  std::optional<Fields> child(std::string_view key) const {
    auto value = find(key);
    if (!value) return std::nullopt;
    object obj;
    if (value->get(obj) != simdjson::SUCCESS) bad(path(key) + ": expected an object, got " + type_name(value->type()));
    return Fields(obj, path(key) + ".", max_text_);
  }

  std::optional<double> number(std::string_view key) const {
    auto value = find(key);
    if (!value) return std::nullopt;
    double d;
    if (value->get(d) != simdjson::SUCCESS) bad(path(key) + ": expected a number, got " + type_name(value->type()));
    return d;
  }

  object raw() const { return obj_; }
  std::size_t max_text() const { return max_text_; }

 private:
  object obj_;
  std::string prefix_;
  std::size_t max_text_;
};

/// Throws BadRecord unless `type`, when present, is TransactionRecorded; `where` names it.
void check_event_type(std::optional<std::string_view> type, const std::string& where);

/// Reads the event's body into `e` (all but its id and source, which the envelope gives).
void read_body(const Fields& body, Event& e);

}  // namespace fraud::events::detail
