#pragma once
// One fixed transaction for the rule fuzzers to evaluate against: every optional part set,
// so that every field an expression can name has a value.
#include "events/event.h"

namespace fraud::fuzz {

inline const events::Event& sample_event() {
  static const events::Event event = [] {
    events::Event e;
    e.event_id = "evt-1";
    e.occurred_at = 1'795'000'000'000'000;
    e.transaction_id = "txn-1";
    e.account_id = "acc-1";
    e.customer_id = "cus-1";
    e.kind = events::Kind::purchase;
    e.direction = events::Direction::debit;
    e.amount = {125000, "EUR"};
    e.channel = "card_not_present";
    e.merchant = {"m-1", "Shop", "5732", "DE"};
    e.counterparty = {"DE001", "Someone", "DE"};
    e.card = {"c-1", "411111"};
    e.device = {"dev-1", "203.0.113.7"};
    e.location = {"DE", "Berlin", 52.5, 13.4};
    e.attributes = {{"note", std::string("x")}, {"risk", 0.5}, {"vip", true}};
    return e;
  }();
  return event;
}

}  // namespace fraud::fuzz
