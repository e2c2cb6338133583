#pragma once
// A TransactionRecorded event for a test, in one line: a 10.00 EUR purchase on acc-1 at
// 2026-11-27T09:00:00Z with an id no other built event has (its transaction id the same), and
// whatever the test is about changed by name:
//
//   auto event = EventBuilder().account("acc-2").amount("12500.00").at("2026-11-27T09:05:00Z").build();

#include <cstdint>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::testing {

class EventBuilder {
 public:
  EventBuilder();

  /// The event id; the transaction id follows it unless set after.
  EventBuilder& id(std::string event_id);
  EventBuilder& transaction(std::string transaction_id);
  EventBuilder& account(std::string account_id);
  /// When it occurred, as RFC 3339 (fails the test if it is not).
  EventBuilder& at(std::string_view rfc3339);
  /// The amount, as the contract writes it: "12.50", in `currency`.
  EventBuilder& amount(std::string_view value, std::string_view currency = "EUR");
  /// The amount in `currency`'s minor units: 1250 EUR minor units is 12.50 EUR.
  EventBuilder& minor_units(std::int64_t minor, std::string currency = "EUR");
  EventBuilder& kind(events::Kind kind);
  EventBuilder& channel(std::string channel);
  EventBuilder& card(std::string fingerprint);
  EventBuilder& merchant(std::string merchant_id);
  EventBuilder& device(std::string device_id);
  EventBuilder& country(std::string country);
  EventBuilder& location(double lat, double lon);

  const events::Event& build() const { return event_; }
  operator const events::Event&() const { return event_; }  // NOLINT(google-explicit-constructor)
  /// The event as a plain-JSON record value (events::to_json).
  std::string json() const;

 private:
  events::Event event_;
};

}  // namespace fraud::testing
