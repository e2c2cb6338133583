#pragma once
// The bank's authorisation path, as bank-sim plays it: before recording a transaction it asks
// the service's inline door (POST /v1/decisions, docs/DECISIONS.md) and declines what the
// answer blocks.

#include <string>

#include "events/event.h"

namespace fraud::sim {

/// What the inline door answered for one transaction.
struct Authorisation {
  bool answered = false;  ///< false: no answer (refused, unreachable); the bank records it as it would without one
  std::string decision;   ///< allow, review or block
  bool fallback = false;  ///< the service's fallback past its deadline, not the rules'
};

class Authoriser {
 public:
  /// `url`: http://host:port of the inline door; `token`: its bearer token.
  Authoriser(const std::string& url, std::string token);

  /// Asks for a decision on `event`, which the bank has not recorded yet. Waits at most a second.
  Authorisation authorise(const events::Event& event) const;

 private:
  std::string host_, port_, token_;
};

}  // namespace fraud::sim
