#include "events/decode.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <boost/algorithm/hex.hpp>
#include <iterator>
#include <stdexcept>

#include "events/money.h"
#include "events/time.h"

namespace fraud::events {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

/// Thrown inside decoding only; Decoder::decode turns it into Decoded::error.
struct BadRecord : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void bad(const std::string& reason) { throw BadRecord(reason); }

const char* type_name(element_type type) {
  switch (type) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "unknown";
}

/// At most 40 bytes of `text` for a reason, cut on a character boundary. Whatever bytes it
/// keeps, Decoder::decode makes the whole reason storable text before returning it.
std::string excerpt(std::string_view text) {
  if (text.size() <= 40) return std::string(text);
  std::size_t cut = 40;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // a continuation byte
  return std::string(text.substr(0, cut)) + "…";
}

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

template <typename Enum, std::size_t N>
Enum parse_enum(std::string_view text, const std::array<std::string_view, N>& names, const std::string& path) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == text) return static_cast<Enum>(i);
  std::string allowed;
  for (auto name : names) allowed += (allowed.empty() ? "" : ", ") + std::string(name);
  bad(path + ": '" + excerpt(text) + "' is not one of " + allowed);
}

constexpr std::array<std::string_view, 7> kKinds = {"payment",  "deposit", "withdrawal", "purchase",
                                                    "transfer", "refund",  "fee"};
constexpr std::array<std::string_view, 2> kDirections = {"debit", "credit"};
constexpr std::array<std::string_view, 8> kChannels = {"card_present",   "card_not_present", "atm",          "branch",
                                                       "online_banking", "mobile_app",       "direct_debit", "wire"};

bool matches(std::string_view s, std::size_t min, std::size_t max, bool (*ok)(char)) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!ok(c)) return false;
  return true;
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

std::string checked(const Fields& f, std::string_view key, std::size_t min, std::size_t max, bool (*ok)(char),
                    const char* shape) {
  auto s = f.text(key);
  if (!s) return {};
  if (!matches(*s, min, max, ok)) bad(f.path(key) + ": '" + excerpt(*s) + "' is not " + shape);
  return std::string(*s);
}

std::string country(const Fields& f) { return checked(f, "country", 2, 2, is_upper, "an ISO 3166 alpha-2 code"); }

Timestamp timestamp(const Fields& f, std::string_view key, std::string_view text) {
  auto t = parse_rfc3339(text);
  if (!t) bad(f.path(key) + ": '" + excerpt(text) + "' is not an RFC 3339 date-time");
  return *t;
}

void read_amount(const Fields& body, Event& e) {
  auto amount = body.child("amount");
  if (!amount) bad("missing required field 'amount'");
  auto value = amount->required_text("value", 64);
  auto currency = amount->required_text("currency", 16);
  std::string error;
  auto money = parse_money(value, currency, error);
  if (!money) bad(error);
  e.amount = std::move(*money);
}

void read_optional_objects(const Fields& body, Event& e) {
  if (auto m = body.child("merchant")) {
    e.merchant = {std::string(m->text("id").value_or("")), std::string(m->text("name").value_or("")),
                  checked(*m, "mcc", 4, 4, is_digit, "a four-digit MCC"), country(*m)};
  }
  if (auto c = body.child("counterparty")) {
    e.counterparty = {std::string(c->text("account").value_or("")), std::string(c->text("name").value_or("")),
                      country(*c)};
  }
  if (auto c = body.child("card")) {
    e.card = {std::string(c->text("fingerprint").value_or("")), checked(*c, "bin", 6, 8, is_digit, "a 6-8 digit BIN")};
  }
  if (auto d = body.child("device")) {
    e.device = {std::string(d->text("id").value_or("")), std::string(d->text("ip").value_or(""))};
  }
  if (auto l = body.child("location")) {
    e.location = {country(*l), std::string(l->text("city").value_or("")), l->number("lat"), l->number("lon")};
    if (e.location.lat && (*e.location.lat < -90 || *e.location.lat > 90)) bad("location.lat: outside -90..90");
    if (e.location.lon && (*e.location.lon < -180 || *e.location.lon > 180)) bad("location.lon: outside -180..180");
  }
}

void read_attributes(const Fields& body, Event& e) {
  auto attributes = body.child("attributes");
  if (!attributes) return;
  for (auto [key, value] : attributes->raw()) {
    std::string name(key);
    if (!is_storable_text(name)) bad("attributes: a name is not valid text");
    if (name.size() > body.max_text())
      bad("attributes: a name is longer than " + std::to_string(body.max_text()) + " bytes");
    std::string_view s;
    double d;
    bool b;
    if (value.get(s) == simdjson::SUCCESS && s.size() > body.max_text())
      bad("attributes." + excerpt(name) + ": longer than " + std::to_string(body.max_text()) + " bytes");
    if (value.get(s) == simdjson::SUCCESS && is_storable_text(s)) e.attributes.emplace_back(name, std::string(s));
    else if (value.get(d) == simdjson::SUCCESS) e.attributes.emplace_back(name, d);
    else if (value.get(b) == simdjson::SUCCESS) e.attributes.emplace_back(name, b);
    else bad("attributes." + excerpt(name) + ": expected a string, number or boolean, got " + type_name(value.type()));
  }
}

void check_event_type(std::optional<std::string_view> type, const std::string& where) {
  if (type && *type != "TransactionRecorded") bad(where + ": '" + excerpt(*type) + "' is not TransactionRecorded");
}

void read_body(const Fields& body, Event& e) {
  check_event_type(body.text("event_type"), "event_type");
  if (auto v = body.find("schema_version")) {
    std::int64_t version;
    if (v->get(version) != simdjson::SUCCESS || version < 1 || version > 1)
      bad("schema_version: this consumer reads version 1");
  }
  e.occurred_at = timestamp(body, "occurred_at", body.required_text("occurred_at", 64));
  if (auto recorded = body.text("recorded_at", 64)) e.recorded_at = timestamp(body, "recorded_at", *recorded);
  e.transaction_id = body.required_text("transaction_id");
  e.account_id = body.required_text("account_id");
  e.customer_id = body.text("customer_id", 128).value_or("");
  e.kind = parse_enum<Kind>(body.required_text("kind", 64), kKinds, "kind");
  e.direction = parse_enum<Direction>(body.required_text("direction", 64), kDirections, "direction");
  read_amount(body, e);
  if (auto channel = body.text("channel", 64))
    e.channel = kChannels[static_cast<std::size_t>(parse_enum<std::size_t>(*channel, kChannels, "channel"))];
  read_optional_objects(body, e);
  read_attributes(body, e);
}

std::optional<std::string_view> header(const RecordView& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value.value_or(std::string_view{});
  return std::nullopt;
}

Envelope detect(const RecordView& r) {
  if (header(r, "id")) return Envelope::debezium_outbox;
  if (header(r, "ce_id")) return Envelope::cloudevents_binary;
  auto content_type = header(r, "content-type");
  if (content_type && content_type->starts_with("application/cloudevents+json"))
    return Envelope::cloudevents_structured;
  return Envelope::plain;
}

std::string header_text(std::string_view value, std::string_view name) {
  if (!is_storable_text(value)) bad("header '" + std::string(name) + "': not valid UTF-8 text");
  return std::string(value);
}

}  // namespace

struct Decoder::Parser {
  explicit Parser(DecodeLimits l) : limits(l) {
    if (json.allocate(simdjson::SIMDJSON_PADDING, limits.max_json_depth) != simdjson::SUCCESS)
      throw std::runtime_error("cannot allocate the JSON parser");
  }

  /// Parses `text` as the record's document; a previous document's elements become invalid.
  element parse(std::string_view text, const char* what) {
    // An empty view may carry a null pointer, which simdjson would hand to memcpy (UBSan).
    if (text.empty()) bad(std::string(what) + ": empty, expected a JSON object");
    element doc;
    auto error = json.parse(text.data(), text.size()).get(doc);
    if (error == simdjson::DEPTH_ERROR)
      bad(std::string(what) + ": JSON nested deeper than " + std::to_string(limits.max_json_depth) + " levels");
    if (error == simdjson::UTF8_ERROR) bad(std::string(what) + ": not valid UTF-8");
    if (error) bad(std::string(what) + ": not valid JSON (" + simdjson::error_message(error) + ")");
    return doc;
  }

  object parse_object(std::string_view text, const char* what) {
    element doc = parse(text, what);
    object obj;
    if (doc.get(obj) != simdjson::SUCCESS)
      bad(std::string(what) + ": expected a JSON object, got " + type_name(doc.type()));
    return obj;
  }

  /// Debezium's value: an object, a JSON string holding one, or Kafka Connect's
  /// {"schema":…,"payload":…} wrapper around either.
  object debezium_body(std::string_view value) {
    element doc = parse(value, "value");
    object obj;
    if (doc.get(obj) == simdjson::SUCCESS && obj.size() == 2) {
      element payload, schema;
      if (obj.at_key("payload").get(payload) == simdjson::SUCCESS &&
          obj.at_key("schema").get(schema) == simdjson::SUCCESS)
        doc = payload;
    }
    std::string_view inner;
    if (doc.get(inner) == simdjson::SUCCESS) {
      scratch.assign(inner);  // the parser's buffers are reused by the next parse
      return parse_object(scratch, "value (JSON string payload)");
    }
    if (doc.get(obj) != simdjson::SUCCESS)
      bad(std::string("value: expected a JSON object, got ") + type_name(doc.type()));
    return obj;
  }

  Event decode(const RecordView& r, Envelope envelope) {
    if (r.value.size() > limits.max_record_bytes)
      bad("value: " + std::to_string(r.value.size()) + " bytes exceeds the limit of " +
          std::to_string(limits.max_record_bytes));
    Event e;
    std::optional<Fields> body;
    switch (envelope) {
      case Envelope::plain: {
        body.emplace(parse_object(r.value, "value"), "", limits.max_string_bytes);
        if (auto id = body->text("event_id", 128)) e.event_id = *id;
        else if (auto h = header_value(r, "event_id")) e.event_id = *h;
        check_event_type(header_value(r, "event_type"), "header 'event_type'");
        break;
      }
      case Envelope::debezium_outbox: {
        e.event_id = header_value(r, "id").value_or("");
        check_event_type(header_value(r, "type"), "header 'type'");
        body.emplace(debezium_body(r.value), "", limits.max_string_bytes);
        break;
      }
      case Envelope::cloudevents_binary: {
        // The CloudEvents Kafka binding writes its attributes as raw text, and an id may well
        // start with '{' or '"': they are read as they are, never as Kafka Connect JSON.
        e.event_id = header_text(header(r, "ce_id").value_or(""), "ce_id");
        auto source = header(r, "ce_source");
        if (!source || source->empty()) bad("header 'ce_source': required by CloudEvents");
        e.source = header_text(*source, "ce_source");
        check_cloudevents_type(header(r, "ce_type"), "header 'ce_type'");
        body.emplace(parse_object(r.value, "value"), "", limits.max_string_bytes);
        break;
      }
      case Envelope::cloudevents_structured: {
        Fields ce(parse_object(r.value, "value"), "", limits.max_string_bytes);
        e.event_id = ce.required_text("id");
        e.source = ce.required_text("source", 1024);
        check_cloudevents_type(ce.text("type"), "type");
        auto data = ce.child("data");
        if (!data) bad("missing required field 'data' (data_base64 is not accepted)");
        body.emplace(*data);
        break;
      }
    }
    if (e.event_id.empty()) bad("missing required field 'event_id' (body or header)");
    if (e.event_id.size() > 128) bad("event_id: longer than 128 characters");
    read_body(*body, e);
    return e;
  }

  /// A header's text, in whichever form Kafka Connect's header.converter wrote it (for the
  /// headers a Connect pipeline carries: id, type, event_id, event_type): raw text
  /// (SimpleHeaderConverter, the default), a JSON-quoted string (JsonConverter, schemas off)
  /// or a {"schema":…,"payload":…} document (JsonConverter, schemas on). Raw text that merely
  /// starts with '"' or '{' but is not such JSON is a bad record, not a guess: an id read two
  /// ways would be two identities. A schema document whose payload is null is an absent header.
  std::optional<std::string> header_value(const RecordView& r, std::string_view name) {
    auto raw = header(r, name);
    if (!raw) return std::nullopt;
    if (raw->empty() || (raw->front() != '"' && raw->front() != '{')) return header_text(*raw, name);
    std::string what = "header '" + std::string(name) + "'";
    element doc;
    auto error = header_json.parse(raw->data(), raw->size()).get(doc);
    if (error) bad(what + ": starts like JSON but is not valid JSON (" + simdjson::error_message(error) + ")");
    object wrapper;
    if (doc.get(wrapper) == simdjson::SUCCESS) {
      element payload, schema;
      if (wrapper.size() != 2 || wrapper.at_key("schema").get(schema) != simdjson::SUCCESS ||
          wrapper.at_key("payload").get(payload) != simdjson::SUCCESS)
        bad(what + ": a JSON object that is not Kafka Connect's {\"schema\",\"payload\"} document");
      if (payload.is_null()) return std::nullopt;
      doc = payload;
    }
    std::string_view text;
    if (doc.get(text) != simdjson::SUCCESS) bad(what + ": expected a string, got " + type_name(doc.type()));
    return header_text(text, name);
  }

  static void check_cloudevents_type(std::optional<std::string_view> type, const std::string& where) {
    if (type && !type->ends_with("TransactionRecorded"))
      bad(where + ": '" + excerpt(*type) + "' is not a TransactionRecorded type");
  }

  DecodeLimits limits;
  simdjson::dom::parser json;
  simdjson::dom::parser header_json;  ///< its own, so reading a header never invalidates the body
  std::string scratch;
};

Decoder::Decoder(DecodeLimits limits) : parser_(std::make_unique<Parser>(limits)) {}
Decoder::~Decoder() = default;

Decoded Decoder::decode(const RecordView& record) {
  Decoded out;
  out.envelope = detect(record);
  try {
    out.event = parser_->decode(record, out.envelope);
  } catch (const BadRecord& e) {
    // A reason quotes producer bytes; PostgreSQL refuses text that is not UTF-8, and that
    // refusal must never be what a bad record costs (a split batch, a wrong reason).
    out.error = storable_text(std::string(to_string(out.envelope)) + ": " + e.what());
  }
  return out;
}

bool is_storable_text(std::string_view text) {
  return text.find('\0') == std::string_view::npos && simdjson::validate_utf8(text.data(), text.size());
}

namespace {
/// The length of the UTF-8 sequence a lead byte announces (1 for anything else).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}
}  // namespace

std::string storable_text(std::string_view text) {
  if (is_storable_text(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    auto length = std::min(sequence_length(c), text.size() - i);
    auto sequence = text.substr(i, length);
    if (c != 0 && is_storable_text(sequence)) {
      out += sequence;
      i += length;
    } else {
      out += "\\x";
      boost::algorithm::hex_lower(&c, &c + 1, std::back_inserter(out));
      ++i;
    }
  }
  return out;
}

const char* to_string(Envelope envelope) {
  switch (envelope) {
    case Envelope::plain: return "plain";
    case Envelope::debezium_outbox: return "debezium-outbox";
    case Envelope::cloudevents_binary: return "cloudevents-binary";
    case Envelope::cloudevents_structured: return "cloudevents-structured";
  }
  return "unknown";
}

const char* to_string(Kind kind) { return kKinds[static_cast<std::size_t>(kind)].data(); }
const char* to_string(Direction direction) { return kDirections[static_cast<std::size_t>(direction)].data(); }

}  // namespace fraud::events
