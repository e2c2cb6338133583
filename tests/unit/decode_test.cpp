// Decoding: every envelope the contract lists, and the bad records it names.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "events/decode.h"
#include "events/encode.h"
#include "events/record.h"
#include "events/storable_text.h"

using namespace fraud::events;

namespace {

// A record (or header) the decoder must refuse, and the words its reason must contain.
struct BadRecord {
  std::string value, reason;
};

struct Example {
  std::string name;
  Record record;
  std::string expected_id, expected_account;
};

std::vector<Example> load_examples() {
  std::ifstream in(std::string(FRAUD_CONTRACT_DIR) + "/examples/envelopes.jsonl");
  REQUIRE(in.good());
  std::vector<Example> out;
  simdjson::dom::parser parser;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc = parser.parse(line);
    Example ex;
    ex.name = std::string(std::string_view(doc["name"]));
    ex.record.topic = std::string(std::string_view(doc["topic"]));
    ex.record.key = std::string(std::string_view(doc["key"]));
    for (auto [name, value] : simdjson::dom::object(doc["headers"]))
      ex.record.headers.emplace_back(std::string(name), std::string(std::string_view(value)));
    ex.record.value = std::string(std::string_view(doc["value"]));
    ex.expected_id = std::string(std::string_view(doc["expect"]["event_id"]));
    ex.expected_account = std::string(std::string_view(doc["expect"]["account_id"]));
    out.push_back(std::move(ex));
  }
  return out;
}

std::string plain_json() {
  std::ifstream in(std::string(FRAUD_CONTRACT_DIR) + "/examples/plain.json");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Decoded decode_value(const std::string& value,
                     std::vector<std::pair<std::string, std::optional<std::string>>> headers = {}) {
  Record r;
  r.value = value;
  r.headers = std::move(headers);
  Decoder decoder;
  return r.decode(decoder);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("every example envelope decodes to the same event") {
  auto examples = load_examples();
  REQUIRE(examples.size() >= 7);
  Decoder decoder;
  for (const auto& ex : examples) {
    CAPTURE(ex.name);
    auto d = ex.record.decode(decoder);
    REQUIRE_MESSAGE(d.event.has_value(), d.error);
    CHECK(d.event->event_id == ex.expected_id);
    CHECK(d.event->account_id == ex.expected_account);
    CHECK(d.event->transaction_id == "txn-000000123");
    CHECK(d.event->amount == Money{125000, "EUR", 2});
    CHECK(d.event->kind == Kind::purchase);
    CHECK(d.event->direction == Direction::debit);
    CHECK(d.event->merchant.mcc == "5732");
    CHECK(d.event->location.lat == doctest::Approx(52.52));
  }
}

TEST_CASE("each envelope is recognised by its marks") {
  Decoder decoder;
  for (const auto& ex : load_examples()) {
    CAPTURE(ex.name);
    auto envelope = ex.record.decode(decoder).envelope;
    if (ex.name.starts_with("plain")) CHECK(envelope == Envelope::plain);
    if (ex.name.starts_with("debezium")) CHECK(envelope == Envelope::debezium_outbox);
    if (ex.name == "cloudevents-binary") CHECK(envelope == Envelope::cloudevents_binary);
    if (ex.name == "cloudevents-structured") CHECK(envelope == Envelope::cloudevents_structured);
  }
}

TEST_CASE("CloudEvents scope the event id by source, and other envelopes have none") {
  Decoder decoder;
  for (const auto& ex : load_examples()) {
    CAPTURE(ex.name);
    auto d = ex.record.decode(decoder);
    REQUIRE(d.event);
    if (ex.name.starts_with("cloudevents")) CHECK(d.event->source == "/core-banking/outbox");
    else CHECK(d.event->source.empty());
  }
}

TEST_CASE("event time is parsed exactly to the microsecond") {
  auto d = decode_value(plain_json());
  REQUIRE(d.event);
  CHECK(d.event->occurred_at == 1795770902123000LL);  // 2026-11-27T09:15:02.123Z
  REQUIRE(d.event->recorded_at);
  CHECK(*d.event->recorded_at - d.event->occurred_at == 17000);
}

TEST_CASE("a plain event without event_id takes it from the event_id header") {
  auto body = replace(plain_json(), "\"event_id\":\"0b9f6a4e-3c1a-4c84-9a53-2f0d5e6b7c11\",", "");
  CHECK_FALSE(decode_value(body).event);
  auto d = decode_value(body, {{"event_id", std::string("from-header")}});
  REQUIRE(d.event);
  CHECK(d.event->event_id == "from-header");
}

TEST_CASE("bad records are rejected with a reason that names the field") {
  const std::string good = plain_json();
  std::vector<BadRecord> cases = {
      {"not json at all", "not valid JSON"},
      {"", "value: empty"},
      {"[1,2,3]", "expected a JSON object"},
      {std::string(200, '[') + std::string(200, ']'), "nested deeper than 64"},
      {"{\"a\":\"\xff\xfe\"}", "not valid UTF-8"},
      {replace(good, "\"account_id\":\"acc-00042\",", ""), "missing required field 'account_id'"},
      {replace(good, "\"kind\":\"purchase\"", "\"kind\":\"gift\""), "kind: 'gift' is not one of"},
      {replace(good, "\"direction\":\"debit\"", "\"direction\":\"sideways\""), "direction"},
      {replace(good, "\"currency\":\"EUR\"", "\"currency\":\"XXQ\""), "not an ISO 4217 currency"},
      {replace(good, "\"value\":\"1250.00\"", "\"value\":\"1250.001\""), "3 fractional digits; EUR allows 2"},
      {replace(good, "\"value\":\"1250.00\"", "\"value\":\"-5.00\""), "is not a decimal"},
      {replace(good, "\"value\":\"1250.00\"", "\"value\":1250.00"), "amount.value: expected a string"},
      {replace(good, "\"value\":\"1250.00\"", "\"value\":\"1e3\""), "is not a decimal"},
      {replace(good, "\"occurred_at\":\"2026-11-27T09:15:02.123Z\"", "\"occurred_at\":\"27/11/2026\""),
       "occurred_at: '27/11/2026' is not an RFC 3339"},
      {replace(good, "\"event_type\":\"TransactionRecorded\"", "\"event_type\":\"AccountOpened\""), "event_type"},
      {replace(good, "\"mcc\":\"5732\"", "\"mcc\":\"57\""), "merchant.mcc"},
      {replace(good, "\"lat\":52.52", "\"lat\":152.52"), "location.lat"},
      {replace(good, "\"account_id\":\"acc-00042\"", "\"account_id\":\"acc\\u0000x\""), "NUL"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.value.substr(0, 80));
    auto d = decode_value(c.value);
    CHECK_FALSE(d.event.has_value());
    CHECK_MESSAGE(d.error.find(c.reason) != std::string::npos, d.error);
  }
}

TEST_CASE("a record larger than the limit is rejected before parsing") {
  Record r;
  r.value = plain_json();
  Decoder decoder({.max_record_bytes = 100, .max_json_depth = 64, .max_string_bytes = 1024});
  auto d = r.decode(decoder);
  CHECK_FALSE(d.event);
  CHECK(d.error.find("exceeds the limit of 100") != std::string::npos);
}

TEST_CASE("a free-text field or attribute longer than the limit is rejected, naming it") {
  Decoder decoder({.max_record_bytes = 1 << 20, .max_json_depth = 64, .max_string_bytes = 64});
  Record r;
  r.value = replace(plain_json(), "\"name\":\"Elektro Markt\"", "\"name\":\"" + std::string(65, 'x') + "\"");
  auto d = r.decode(decoder);
  CHECK_FALSE(d.event);
  CHECK(d.error.find("merchant.name: longer than 64 bytes") != std::string::npos);
  r.value =
      replace(plain_json(), "\"location\"", "\"attributes\":{\"note\":\"" + std::string(65, 'y') + "\"},\"location\"");
  d = r.decode(decoder);
  CHECK_FALSE(d.event);
  CHECK(d.error.find("attributes.note: longer than 64 bytes") != std::string::npos);
  r.value = replace(plain_json(), "\"name\":\"Elektro Markt\"", "\"name\":\"" + std::string(64, 'x') + "\"");
  CHECK(r.decode(decoder).event);
}

TEST_CASE("a Debezium id header that is not text is rejected") {
  auto d = decode_value(plain_json(), {{"id", std::string("\xff\xfe")}});
  CHECK_FALSE(d.event);
  CHECK(d.error.find("header 'id'") != std::string::npos);
}

TEST_CASE("every header the decoder reads is accepted in each encoding Kafka Connect writes") {
  auto body = replace(plain_json(), "\"event_id\":\"0b9f6a4e-3c1a-4c84-9a53-2f0d5e6b7c11\",", "");
  auto schema_doc = [](const std::string& payload) {
    return "{\"schema\":{\"type\":\"string\",\"optional\":false},\"payload\":\"" + payload + "\"}";
  };
  // raw text (SimpleHeaderConverter), JSON-quoted (JsonConverter), schema document (schemas on)
  std::vector<std::function<std::string(const std::string&)>> encodings = {
      [](const std::string& s) { return s; }, [](const std::string& s) { return "\"" + s + "\""; }, schema_doc};
  for (std::size_t i = 0; i < encodings.size(); ++i) {
    CAPTURE(i);
    const auto& encode = encodings[i];
    auto d = decode_value(body, {{"id", encode("evt-1")}, {"type", encode("TransactionRecorded")}});
    REQUIRE_MESSAGE(d.event, d.error);
    CHECK(d.event->event_id == "evt-1");
    d = decode_value(body, {{"event_id", encode("evt-2")}, {"event_type", encode("TransactionRecorded")}});
    REQUIRE_MESSAGE(d.event, d.error);
    CHECK(d.event->event_id == "evt-2");
    // An encoded header is checked like a raw one: a wrong type is still refused.
    d = decode_value(body, {{"id", encode("evt-1")}, {"type", encode("AccountOpened")}});
    CHECK_FALSE(d.event);
    CHECK(d.error.find("header 'type': 'AccountOpened'") != std::string::npos);
  }
}

TEST_CASE("CloudEvents binary headers are read as raw text, whatever they start with") {
  auto body = replace(plain_json(), "\"event_id\":\"0b9f6a4e-3c1a-4c84-9a53-2f0d5e6b7c11\",", "");
  for (std::string id : {"{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", "\"42\"", "42"}) {
    CAPTURE(id);
    auto d = decode_value(
        body,
        {{"ce_id", id}, {"ce_source", std::string("/bank")}, {"ce_type", std::string("com.bank.TransactionRecorded")}});
    REQUIRE_MESSAGE(d.event, d.error);
    CHECK(d.event->event_id == id);  // "42" with its quotes is not the event 42
  }
}

TEST_CASE("a header that starts like JSON but is not the JSON Kafka Connect writes is rejected, naming it") {
  std::vector<BadRecord> cases = {
      {"\"unterminated", "header 'id': starts like JSON but is not valid JSON"},
      {"{\"payload\":\"x\"}", "header 'id': a JSON object that is not Kafka Connect's"},
      {"{\"schema\":{},\"payload\":42}", "header 'id': expected a string, got a number"},
      {"\"\\u0000x\"", "header 'id': not valid UTF-8 text"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.value);
    auto d = decode_value(plain_json(), {{"id", c.value}});
    CHECK_FALSE(d.event);
    CHECK_MESSAGE(d.error.find(c.reason) != std::string::npos, d.error);
  }
}

TEST_CASE("a JSON-quoted event_id header does not disturb the body read before it") {
  // The header is parsed after the body: it must not reuse the body's parser buffers.
  auto body = replace(plain_json(), "\"event_id\":\"0b9f6a4e-3c1a-4c84-9a53-2f0d5e6b7c11\",", "");
  auto d = decode_value(body, {{"event_id", std::string("\"evt-9\"")}});
  REQUIRE_MESSAGE(d.event, d.error);
  CHECK(d.event->event_id == "evt-9");
  CHECK(d.event->account_id == "acc-00042");
  CHECK(d.event->merchant.mcc == "5732");
}

TEST_CASE("CloudEvents binary mode requires ce_source") {
  auto d = decode_value(plain_json(), {{"ce_id", std::string("abc")}});
  CHECK_FALSE(d.event);
  CHECK(d.error.find("ce_source") != std::string::npos);
}

TEST_CASE("the decoder keeps working after a bad record") {
  Decoder decoder;
  Record bad, good;
  bad.value = "{";
  good.value = plain_json();
  CHECK_FALSE(bad.decode(decoder).event);
  CHECK(good.decode(decoder).event);
}

TEST_CASE("a rejection reason is storable text whatever bytes it quotes") {
  std::string kind = "a" + std::string(15, 'x');
  for (int i = 0; i < 20; ++i) kind += "\xc3\xa9";  // byte 40 falls inside a character
  auto d = decode_value(replace(plain_json(), "\"purchase\"", "\"" + kind + "\""));
  REQUIRE_FALSE(d.event);
  CHECK(is_storable_text(d.error));
  CHECK(d.error.find("kind:") != std::string::npos);
  d = decode_value(plain_json(), {{"id", std::string("evt-1")}, {"type", std::string("\xff\x00\xfe", 3)}});
  REQUIRE_FALSE(d.event);
  CHECK(is_storable_text(d.error));
  CHECK(d.error.find("header 'type': not valid UTF-8 text") != std::string::npos);
}

TEST_CASE("storable_text keeps valid characters and spells every other byte") {
  CHECK(storable_text("plain é text") == "plain é text");
  CHECK(storable_text(std::string("a\xc3")) == "a\\xc3");
  CHECK(storable_text(std::string("\xe2\x82\xac\xe2\x82")) == "\xe2\x82\xac\\xe2\\x82");
  CHECK(storable_text(std::string("x\0y", 3)) == "x\\x00y");
}

TEST_CASE("the body digest leaves out recorded_at, which a copy decided before recording lacks, and nothing else") {
  auto event =
      decode_value(R"({"event_id":"evt-1","event_type":"TransactionRecorded","occurred_at":"2026-11-27T09:15:02Z",
    "recorded_at":"2026-11-27T09:15:03Z","transaction_id":"t-1","account_id":"acc-1","kind":"purchase",
    "direction":"debit","amount":{"value":"12.00","currency":"EUR"}})");
  REQUIRE(event.event);
  auto recorded = *event.event;
  auto decided_first = recorded;
  decided_first.recorded_at.reset();
  CHECK(body_digest(to_json(recorded)) == body_digest(to_json(decided_first)));
  auto other = recorded;
  other.amount.minor_units += 1;
  CHECK(body_digest(to_json(recorded)) != body_digest(to_json(other)));
  // A producer's id that spells the member is escaped, so it is digested like any text.
  auto spelled = decided_first, spelled_otherwise = decided_first;
  spelled.event_id = R"(x","recorded_at":"y)";
  spelled_otherwise.event_id = R"(x","recorded_at":"z)";
  CHECK(body_digest(to_json(spelled)) != body_digest(to_json(spelled_otherwise)));
  // An attribute named recorded_at is content like any other.
  auto tagged = decided_first, tagged_otherwise = decided_first;
  tagged.attributes = {{"x", true}, {"recorded_at", std::string("a")}};
  tagged_otherwise.attributes = {{"x", true}, {"recorded_at", std::string("b")}};
  CHECK(body_digest(to_json(tagged)) != body_digest(to_json(tagged_otherwise)));
}
