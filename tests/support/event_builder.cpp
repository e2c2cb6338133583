#include "tests/support/event_builder.h"

#include <doctest/doctest.h>

#include <atomic>

#include "events/encode.h"
#include "events/money.h"
#include "events/time.h"

namespace fraud::testing {

EventBuilder::EventBuilder() {
  static std::atomic<int> built{0};
  id("e" + std::to_string(++built));
  account("acc-1");
  at("2026-11-27T09:00:00Z");
  amount("10.00");
  kind(events::Kind::purchase);
}

EventBuilder& EventBuilder::id(std::string event_id) {
  event_.transaction_id = event_id;
  event_.event_id = std::move(event_id);
  return *this;
}

EventBuilder& EventBuilder::transaction(std::string transaction_id) {
  event_.transaction_id = std::move(transaction_id);
  return *this;
}

EventBuilder& EventBuilder::account(std::string account_id) {
  event_.account_id = std::move(account_id);
  return *this;
}

EventBuilder& EventBuilder::at(std::string_view rfc3339) {
  auto when = events::parse_rfc3339(rfc3339);
  REQUIRE_MESSAGE(when, "not an RFC 3339 time: " << rfc3339);
  event_.occurred_at = *when;
  return *this;
}

EventBuilder& EventBuilder::amount(std::string_view value, std::string_view currency) {
  std::string error;
  auto money = events::parse_money(value, currency, error);
  REQUIRE_MESSAGE(money, error);
  event_.amount = *money;
  return *this;
}

EventBuilder& EventBuilder::minor_units(std::int64_t minor, std::string currency) {
  auto exponent = events::currency_exponent(currency);
  REQUIRE_MESSAGE(exponent, "not a currency: " << currency);
  event_.amount = {minor, std::move(currency), *exponent};
  return *this;
}

EventBuilder& EventBuilder::kind(events::Kind kind) {
  event_.kind = kind;
  return *this;
}

EventBuilder& EventBuilder::channel(std::string channel) {
  event_.channel = std::move(channel);
  return *this;
}

EventBuilder& EventBuilder::card(std::string fingerprint) {
  event_.card.fingerprint = std::move(fingerprint);
  return *this;
}

EventBuilder& EventBuilder::merchant(std::string merchant_id) {
  event_.merchant.id = std::move(merchant_id);
  return *this;
}

EventBuilder& EventBuilder::device(std::string device_id) {
  event_.device.id = std::move(device_id);
  return *this;
}

EventBuilder& EventBuilder::country(std::string country) {
  event_.location.country = std::move(country);
  return *this;
}

EventBuilder& EventBuilder::location(double lat, double lon) {
  event_.location.lat = lat;
  event_.location.lon = lon;
  return *this;
}

std::string EventBuilder::json() const { return events::to_json(event_); }

}  // namespace fraud::testing
