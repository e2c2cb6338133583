#include "events/decode.h"
// The envelopes: which one carries a record (detect), the event id and source each gives,
// and the headers Kafka Connect may have JSON-encoded. The body is body_fields.cpp's.

#include <simdjson.h>

#include <stdexcept>

#include "events/body_fields.h"
#include "events/storable_text.h"

namespace fraud::events {
namespace {

using namespace detail;

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

const char* to_string(Envelope envelope) {
  switch (envelope) {
    case Envelope::plain: return "plain";
    case Envelope::debezium_outbox: return "debezium-outbox";
    case Envelope::cloudevents_binary: return "cloudevents-binary";
    case Envelope::cloudevents_structured: return "cloudevents-structured";
  }
  return "unknown";
}

}  // namespace fraud::events
