#include "events/encode.h"

#include <cstdio>

#include "events/json_text.h"
#include "events/money.h"
#include "events/time.h"

namespace fraud::events {
namespace {

/// Appends `,"name":"value"` unless the value is empty (absent optional fields stay absent).
void text(std::string& out, const char* name, const std::string& value) {
  if (value.empty()) return;
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

void number(std::string& out, const char* name, const std::optional<double>& value) {
  if (!value) return;
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, ",\"%s\":%.17g", name, *value);
  out += buffer;
}

/// Appends `,"name":{…}` built by `fill` unless it wrote nothing.
template <typename Fill>
void object(std::string& out, const char* name, Fill fill) {
  std::string inner;
  fill(inner);
  if (inner.empty()) return;
  inner[0] = '{';
  out += ",\"";
  out += name;
  out += "\":" + inner + "}";
}

}  // namespace

std::string to_json(const Event& e) {
  std::string out = "{\"event_type\":\"TransactionRecorded\"";
  text(out, "event_id", e.event_id);
  text(out, "event_source", e.source);
  out += ",\"schema_version\":" + std::to_string(e.schema_version);
  text(out, "occurred_at", format_rfc3339(e.occurred_at));
  if (e.recorded_at) text(out, "recorded_at", format_rfc3339(*e.recorded_at));
  text(out, "transaction_id", e.transaction_id);
  text(out, "account_id", e.account_id);
  text(out, "customer_id", e.customer_id);
  text(out, "kind", to_string(e.kind));
  text(out, "direction", to_string(e.direction));
  out += ",\"amount\":{\"value\":\"" + format_money(e.amount) + "\",\"currency\":";
  append_json_string(out, e.amount.currency);
  out += "}";
  text(out, "channel", e.channel);
  object(out, "merchant", [&](std::string& o) {
    text(o, "id", e.merchant.id), text(o, "name", e.merchant.name), text(o, "mcc", e.merchant.mcc);
    text(o, "country", e.merchant.country);
  });
  object(out, "counterparty", [&](std::string& o) {
    text(o, "account", e.counterparty.account), text(o, "name", e.counterparty.name);
    text(o, "country", e.counterparty.country);
  });
  object(out, "card", [&](std::string& o) { text(o, "fingerprint", e.card.fingerprint), text(o, "bin", e.card.bin); });
  object(out, "device", [&](std::string& o) { text(o, "id", e.device.id), text(o, "ip", e.device.ip); });
  object(out, "location", [&](std::string& o) {
    text(o, "country", e.location.country), text(o, "city", e.location.city);
    number(o, "lat", e.location.lat), number(o, "lon", e.location.lon);
  });
  object(out, "attributes", [&](std::string& o) {
    for (const auto& [name, value] : e.attributes) {
      o += ",";
      append_json_string(o, name);
      o += ":";
      if (auto* s = std::get_if<std::string>(&value)) append_json_string(o, *s);
      else if (auto* b = std::get_if<bool>(&value)) o += *b ? "true" : "false";
      else {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.17g", std::get<double>(value));
        o += buffer;
      }
    }
  });
  return out + "}";
}

namespace {

void fnv1a(std::uint64_t& hash, std::string_view text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
}

}  // namespace

std::int64_t body_digest(std::string_view json) {
  std::uint64_t hash = 14695981039346656037ULL;  // FNV-1a, 64 bits
  // to_json writes recorded_at, when there is one, right after occurred_at's value. Inside a
  // string every quote is escaped, so the first `"occurred_at":"` is the member itself; an
  // attribute that happens to be named recorded_at is digested like any other.
  constexpr std::string_view kOccurredAt = "\"occurred_at\":\"", kRecordedAt = ",\"recorded_at\":\"";
  if (auto occurred = json.find(kOccurredAt); occurred != std::string_view::npos) {
    auto after = json.find('"', occurred + kOccurredAt.size());
    if (after != std::string_view::npos && json.substr(after + 1).starts_with(kRecordedAt)) {
      auto end = json.find('"', after + 1 + kRecordedAt.size());
      fnv1a(hash, json.substr(0, after + 1));
      json.remove_prefix(end == std::string_view::npos ? json.size() : end + 1);
    }
  }
  fnv1a(hash, json);
  return static_cast<std::int64_t>(hash);
}

}  // namespace fraud::events
