#pragma once
// POST /v1/decisions: the bank's authorisation path sends the transaction it is about to
// authorise, under the id its TransactionRecorded event will carry, and gets allow, review or
// block from the rules and features the stream uses (consumer/decision_desk.h applies it).
// The API is docs/decisions-openapi.yaml; docs/DECISIONS.md says what it guarantees.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "consumer/decision_desk.h"
#include "events/decode.h"
#include "ops/http_server.h"
#include "rules/rule_set.h"

namespace fraud::consumer {

struct DecisionApiSettings {
  std::string token;  ///< the bearer token callers present
  std::chrono::milliseconds deadline{100};
  rules::Decision fallback = rules::Decision::review;  ///< the answer past the deadline, marked as such
  events::DecodeLimits limits;
  std::int64_t retention_days = 0;  ///< events older than the dedup window are refused, as the stream refuses them
  std::string event_source;         ///< the source of every request's identity (decisions.event_source)
};

struct DecisionMetrics {
  explicit DecisionMetrics(prometheus::Registry& registry);

  /// Requests by outcome: decided, already_decided, fallback, conflict, invalid, refused,
  /// unauthorised, not_found.
  prometheus::Counter& requests(const char* outcome);
  /// Answers from the rules (fallbacks aside), by decision.
  prometheus::Counter& decisions(const std::string& decision);
  /// Fallback answers, by reason: deadline or unavailable.
  prometheus::Counter& fallbacks(const char* reason);

  prometheus::Family<prometheus::Counter>& requests_family;
  prometheus::Family<prometheus::Counter>& decisions_family;
  prometheus::Family<prometheus::Counter>& fallbacks_family;
  prometheus::Histogram& latency;         ///< from the request read to the answer, fallbacks included
  prometheus::Histogram& group_requests;  ///< requests per committed group (the desk observes it)
};

/// The handler of the API's listener: POST /v1/decisions. It runs on the server's workers, one request each, waiting
/// for its group at most the deadline.
ops::HttpRequestHandler decision_api(DecisionDesk& desk, const DecisionApiSettings& settings, DecisionMetrics& metrics);

}  // namespace fraud::consumer
