#pragma once
// A decoded TransactionRecorded event (the contract is schemas/transaction-recorded/README.md):
// the one shape the rules and the store see, whatever envelope carried it.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace fraud::events {

/// An exact amount in integer minor units of its currency (cents for EUR, yen for JPY).
struct Money {
  std::int64_t minor_units = 0;
  std::string currency;  ///< ISO 4217 code
  int exponent = 2;      ///< the currency's minor-unit exponent

  friend bool operator==(const Money&, const Money&) = default;
};

/// Microseconds since the Unix epoch, UTC. Event time, never the wall clock.
using Timestamp = std::int64_t;

enum class Kind { payment, deposit, withdrawal, purchase, transfer, refund, fee };
enum class Direction { debit, credit };

struct Merchant {
  std::string id, name, mcc, country;
};
struct Counterparty {
  std::string account, name, country;
};
struct Card {
  std::string fingerprint, bin;
};
struct Device {
  std::string id, ip;
};
struct Location {
  std::string country, city;
  std::optional<double> lat, lon;
};

/// A free-form attribute value (schema: string, number or boolean).
using Attribute = std::variant<std::string, double, bool>;

struct Event {
  /// The deduplication key is (source, event_id): CloudEvents scope ids by source; the
  /// other envelopes carry one id, and their source is empty.
  std::string source;
  std::string event_id;
  int schema_version = 1;
  Timestamp occurred_at = 0;
  std::optional<Timestamp> recorded_at;
  std::string transaction_id;
  std::string account_id;
  std::string customer_id;  ///< empty when absent
  Kind kind = Kind::payment;
  Direction direction = Direction::debit;
  Money amount;
  std::string channel;  ///< empty when absent
  Merchant merchant;    ///< fields empty when absent
  Counterparty counterparty;
  Card card;
  Device device;
  Location location;
  std::vector<std::pair<std::string, Attribute>> attributes;

  /// Not the producer's: set only when the store reads back an attempt the inline door blocked,
  /// which the bank declined (migrations/0029). Never decoded, never part of the content digest.
  bool declined = false;
};

/// The text of an enum, as it appears in the event contract.
const char* to_string(Kind kind);
/// The text of an enum, as it appears in the event contract.
const char* to_string(Direction direction);

}  // namespace fraud::events
