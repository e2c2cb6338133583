#include "events/body_fields.h"

#include <array>

#include "events/money.h"
#include "events/storable_text.h"
#include "events/time.h"

namespace fraud::events {
namespace detail {

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

std::string excerpt(std::string_view text) {
  if (text.size() <= 40) return std::string(text);
  std::size_t cut = 40;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // a continuation byte
  return std::string(text.substr(0, cut)) + "…";
}

namespace {

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

}  // namespace

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

}  // namespace detail

const char* to_string(Kind kind) { return detail::kKinds[static_cast<std::size_t>(kind)].data(); }
const char* to_string(Direction direction) { return detail::kDirections[static_cast<std::size_t>(direction)].data(); }

}  // namespace fraud::events
