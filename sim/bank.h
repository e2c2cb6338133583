#pragma once
// bank-sim: a stand-in for the core banking system. It records transactions for a
// population of customers with habits, and in the same database transaction writes each one's
// TransactionRecorded event to the bank's outbox, as a real core system would. Now and then
// it plays a fraud scenario; every transaction is labelled (fraud or not, and which
// scenario), so rule quality can be measured against the labels.

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "events/event.h"

namespace fraud::sim {

/// One transaction the bank records, and whether it is fraud.
struct Transaction {
  events::Event event;
  bool fraud = false;
  std::string scenario;  ///< empty for ordinary activity
};

struct Population {
  int customers = 1000;
  double fraud_scenarios_per_1000 = 5;                ///< scenarios started per 1,000 ordinary transactions
  events::Timestamp start = 1'793'491'200'000'000LL;  ///< simulated time; bank-sim sets 30 days ago
  double transactions_per_customer_day = 4;
  std::uint32_t seed = 20261127;
  std::string run_id = "sim";  ///< makes event and transaction ids unique per run
};

/// Generates transactions in simulated event time: ordinary activity, with fraud scenarios
/// woven in. Pure: no database, no clock.
class Bank {
 public:
  explicit Bank(Population population);

  /// The next transaction, in event-time order.
  Transaction next();

  /// Scenarios started so far, by name.
  const std::map<std::string, int>& scenarios() const { return scenarios_; }

 private:
  /// A customer and their habits: where they live, where they shop, what they spend, when.
  struct Customer {
    std::string account, customer, card, device, payees[2];
    std::size_t home = 0;       ///< index into the home cities
    std::size_t shops[3] = {};  ///< indices into the usual shops
    double typical = 20;        ///< a typical purchase, in EUR
    int first_hour = 7, last_hour = 22;
  };
  void ordinary(const Customer& c);
  void start_scenario();
  void card_testing();
  void account_takeover();
  void structuring();
  void mule();
  events::Event base(const Customer& c, events::Timestamp at);
  void schedule(events::Event e, bool fraud, const std::string& scenario);
  std::int64_t cents(double low, double high);

  Population population_;
  std::mt19937_64 random_;
  std::vector<Customer> customers_;
  events::Timestamp clock_;
  std::multimap<events::Timestamp, Transaction> pending_;
  std::map<std::string, int> scenarios_;
  std::uint64_t sequence_ = 0;
};

}  // namespace fraud::sim
