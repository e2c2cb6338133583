#include "sim/bank.h"

#include <cmath>

#include "events/money.h"

namespace fraud::sim {
namespace {

constexpr events::Timestamp kSecond = 1'000'000, kMinute = 60 * kSecond, kHour = 60 * kMinute;

struct City {
  const char* name;
  const char* country;
  double lat, lon;
};

constexpr City kHomes[] = {{"Berlin", "DE", 52.52, 13.405},    {"Munich", "DE", 48.137, 11.575},
                           {"Hamburg", "DE", 53.551, 9.993},   {"Paris", "FR", 48.857, 2.352},
                           {"Madrid", "ES", 40.417, -3.704},   {"Vienna", "AT", 48.208, 16.373},
                           {"Amsterdam", "NL", 52.368, 4.904}, {"Warsaw", "PL", 52.23, 21.012}};
constexpr City kFarAway[] = {{"Lagos", "NG", 6.524, 3.379},
                             {"Bangkok", "TH", 13.756, 100.502},
                             {"Sao Paulo", "BR", -23.55, -46.633},
                             {"New York", "US", 40.713, -74.006}};

struct Shop {
  const char* id;
  const char* name;
  const char* mcc;
};

constexpr Shop kShops[] = {{"m-100", "Frischmarkt", "5411"},     {"m-101", "Bistro Central", "5812"},
                           {"m-102", "Tankstelle Nord", "5541"}, {"m-103", "Elektro Markt", "5732"},
                           {"m-104", "Mode Haus", "5651"},       {"m-105", "Apotheke am Platz", "5912"},
                           {"m-106", "Buchladen", "5942"},       {"m-107", "Webshop", "5999"},
                           {"m-108", "Baumarkt", "5200"},        {"m-109", "Cafe Eck", "5814"}};

template <typename T, std::size_t N>
std::size_t pick(const T (&)[N], std::mt19937_64& r) {
  return std::uniform_int_distribution<std::size_t>(0, N - 1)(r);
}

}  // namespace

Bank::Bank(Population population)
    : population_(std::move(population)), random_(population_.seed), clock_(population_.start) {
  for (int i = 0; i < population_.customers; ++i) {
    Customer c;
    auto n = std::to_string(i);
    c.account = "acc-" + n, c.customer = "cus-" + n, c.card = "card-" + n, c.device = "dev-" + n;
    c.payees[0] = "DE89-" + n + "-1", c.payees[1] = "DE89-" + n + "-2";
    c.home = pick(kHomes, random_);
    for (auto& s : c.shops) s = pick(kShops, random_);
    c.typical = std::exp(std::uniform_real_distribution<double>(std::log(8), std::log(120))(random_));
    c.first_hour = std::uniform_int_distribution<int>(6, 9)(random_);
    c.last_hour = std::uniform_int_distribution<int>(19, 23)(random_);
    customers_.push_back(std::move(c));
  }
}

std::int64_t Bank::cents(double low, double high) {
  return std::llround(std::uniform_real_distribution<double>(low, high)(random_) * 100);
}

events::Event Bank::base(const Customer& c, events::Timestamp at) {
  events::Event e;
  auto n = std::to_string(++sequence_);
  e.event_id = population_.run_id + "-evt-" + n;
  e.transaction_id = population_.run_id + "-txn-" + n;
  e.occurred_at = at;
  e.account_id = c.account;
  e.customer_id = c.customer;
  e.amount = {0, "EUR", 2};
  e.device.id = c.device;
  const City& home = kHomes[c.home];
  e.location = {home.country, home.name, home.lat, home.lon};
  return e;
}

void Bank::schedule(events::Event e, bool fraud, const std::string& scenario) {
  auto at = e.occurred_at;
  pending_.emplace(at, Transaction{std::move(e), fraud, scenario});
}

// A customer's day: purchases at their usual shops, transfers to known payees, cash, income.
void Bank::ordinary(const Customer& c) {
  auto e = base(c, clock_);
  double roll = std::uniform_real_distribution<double>(0, 1)(random_);
  if (roll < 0.8) {
    const Shop& shop = kShops[c.shops[std::uniform_int_distribution<int>(0, 2)(random_)]];
    e.kind = events::Kind::purchase;
    e.amount.minor_units = std::max<std::int64_t>(50, cents(c.typical * 0.3, c.typical * 2.5));
    e.merchant = {shop.id, shop.name, shop.mcc, kHomes[c.home].country};
    e.channel = roll < 0.5 ? "card_present" : "card_not_present";
    e.card = {c.card, "411111"};
  } else if (roll < 0.9) {
    e.kind = events::Kind::transfer;
    e.amount.minor_units = cents(50, 800);
    e.channel = "online_banking";
    e.counterparty = {c.payees[roll < 0.85 ? 0 : 1], "Known Payee", kHomes[c.home].country};
  } else if (roll < 0.95) {
    e.kind = events::Kind::withdrawal;
    e.channel = "atm";
    e.amount.minor_units = std::uniform_int_distribution<std::int64_t>(1, 15)(random_) * 2000;
    e.card = {c.card, "411111"};
  } else {
    e.kind = events::Kind::deposit, e.direction = events::Direction::credit;
    e.channel = "branch";
    e.amount.minor_units = cents(800, 3000);
  }
  schedule(std::move(e), false, "");
}

// Stolen card numbers tried with tiny online purchases from one device.
void Bank::card_testing() {
  auto device = "dev-fraud-" + std::to_string(sequence_);
  auto at = clock_;
  for (int i = 0; i < 6; ++i) {
    const auto& victim = customers_[std::uniform_int_distribution<std::size_t>(0, customers_.size() - 1)(random_)];
    auto e = base(victim, at += std::uniform_int_distribution<int>(1, 3)(random_) * kMinute);
    e.kind = events::Kind::purchase, e.channel = "card_not_present";
    e.amount.minor_units = cents(1, 5);
    e.merchant = {"m-107", "Webshop", "5999", "NL"};
    e.card = {victim.card, "411111"};
    e.device = {device, "198.51.100.7"};
    e.location = {};
    schedule(std::move(e), true, "card_testing");
  }
}

// A taken-over account: the card appears far away within the hour, then money leaves for a
// payee never paid before, from a new device.
void Bank::account_takeover() {
  const auto& victim = customers_[std::uniform_int_distribution<std::size_t>(0, customers_.size() - 1)(random_)];
  auto home = base(victim, clock_);
  home.kind = events::Kind::purchase, home.channel = "card_present";
  home.amount.minor_units = cents(10, 40);
  const Shop& shop = kShops[victim.shops[0]];
  home.merchant = {shop.id, shop.name, shop.mcc, kHomes[victim.home].country};
  home.card = {victim.card, "411111"};
  schedule(std::move(home), false, "");
  const City& far = kFarAway[pick(kFarAway, random_)];
  auto abroad = base(victim, clock_ + std::uniform_int_distribution<int>(20, 50)(random_) * kMinute);
  abroad.kind = events::Kind::purchase, abroad.channel = "card_present";
  abroad.amount.minor_units = cents(300, 1500);
  abroad.merchant = {"m-900", "Electronics Duty Free", "5732", far.country};
  abroad.card = {victim.card, "411111"};
  abroad.device = {"dev-fraud-" + std::to_string(sequence_), "203.0.113.99"};
  abroad.location = {far.country, far.name, far.lat, far.lon};
  auto drain = abroad;
  schedule(std::move(abroad), true, "account_takeover");
  drain.event_id += "-t", drain.transaction_id += "-t";
  drain.occurred_at += 5 * kMinute;
  drain.kind = events::Kind::transfer, drain.channel = "online_banking", drain.merchant = {}, drain.card = {};
  drain.amount.minor_units = cents(6000, 9000);
  drain.counterparty = {"GB-MULE-" + std::to_string(sequence_), "New Payee", "GB"};
  schedule(std::move(drain), true, "account_takeover");
}

// Cash deposits kept just under the 10,000 reporting threshold.
void Bank::structuring() {
  const auto& c = customers_[std::uniform_int_distribution<std::size_t>(0, customers_.size() - 1)(random_)];
  auto at = clock_;
  for (int i = 0; i < 4; ++i) {
    auto e = base(c, at += std::uniform_int_distribution<int>(60, 180)(random_) * kMinute);
    e.kind = events::Kind::deposit, e.direction = events::Direction::credit, e.channel = "branch";
    e.amount.minor_units = cents(9100, 9950);
    schedule(std::move(e), true, "structuring");
  }
}

// A mule account: a large credit, then money fanned out to new payees within minutes.
void Bank::mule() {
  const auto& c = customers_[std::uniform_int_distribution<std::size_t>(0, customers_.size() - 1)(random_)];
  auto in = base(c, clock_);
  in.kind = events::Kind::transfer, in.direction = events::Direction::credit, in.channel = "online_banking";
  in.amount.minor_units = cents(18000, 25000);
  in.counterparty = {"LT-SOURCE-" + std::to_string(sequence_), "Unknown Sender", "LT"};
  auto at = in.occurred_at;
  schedule(std::move(in), true, "mule");
  for (int i = 0; i < 6; ++i) {
    auto out = base(c, at += std::uniform_int_distribution<int>(40, 90)(random_) * kSecond);
    out.kind = events::Kind::transfer, out.channel = "online_banking";
    out.amount.minor_units = cents(2500, 4000);
    out.counterparty = {"XX-MULE-" + std::to_string(sequence_), "Payee " + std::to_string(i), "RO"};
    schedule(std::move(out), true, "mule");
  }
}

void Bank::start_scenario() {
  static constexpr const char* kNames[] = {"card_testing", "account_takeover", "structuring", "mule"};
  auto which = std::uniform_int_distribution<int>(0, 3)(random_);
  ++scenarios_[kNames[which]];
  switch (which) {
    case 0: return card_testing();
    case 1: return account_takeover();
    case 2: return structuring();
    default: return mule();
  }
}

Transaction Bank::next() {
  auto step = static_cast<events::Timestamp>(86400.0 * kSecond /
                                             (population_.transactions_per_customer_day * population_.customers));
  // Advance the clock until something is due: ordinary activity of customers awake at this
  // hour, and now and then a fraud scenario.
  while (pending_.empty() || pending_.begin()->first > clock_) {
    clock_ += std::max<events::Timestamp>(step, 1);
    const auto& c = customers_[std::uniform_int_distribution<std::size_t>(0, customers_.size() - 1)(random_)];
    auto hour = static_cast<int>(clock_ / kHour % 24);
    if (hour >= c.first_hour && hour <= c.last_hour) ordinary(c);
    if (std::uniform_real_distribution<double>(0, 1000)(random_) < population_.fraud_scenarios_per_1000)
      start_scenario();
  }
  auto first = pending_.begin();
  auto t = std::move(first->second);
  pending_.erase(first);
  return t;
}

}  // namespace fraud::sim
