#include "consumer/decision_api.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <memory>
#include <optional>

#include <simdjson.h>

#include "events/encode.h"
#include "events/json_text.h"
#include "events/storable_text.h"
#include "events/time.h"
#include "store/retention.h"

namespace fraud::consumer {
namespace {

using Clock = std::chrono::steady_clock;
using prometheus::BuildCounter;
using prometheus::BuildHistogram;

// Compared as SHA-256 digests in constant time: neither the token's bytes nor its length
// show in how long a refusal takes.
bool authorised(const std::string& authorization, const std::string& token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (token.empty() || !authorization.starts_with(kBearer)) return false;
  auto presented = std::string_view(authorization).substr(kBearer.size());
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), b);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

// The source a request names as "event_source", if any. The plain envelope has none: the
// door's identities take decisions.event_source, the one the stream's copies carry, and a
// request naming another is refused rather than applied under an identity the stream's copy
// would not share (and so applied twice). The body was decoded already: a JSON object.
std::optional<std::string> named_source(const std::string& body) {
  thread_local simdjson::dom::parser parser;
  std::string_view source;
  if (parser.parse(body)["event_source"].get(source) != simdjson::SUCCESS) return std::nullopt;
  return std::string(source);
}

ops::HttpResponse json(int status, std::string body) { return {status, std::move(body), "application/json"}; }

ops::HttpResponse error(int status, const std::string& message) {
  std::string body = "{\"error\":";
  events::append_json_string(body, events::storable_text(message));
  return json(status, body + "}\n");
}

// The identity every answer names, so a caller can match answers to requests.
std::string identity_fields(const events::Event& e) {
  std::string out = "{\"event_id\":";
  events::append_json_string(out, e.event_id);
  out += ",\"event_source\":";
  events::append_json_string(out, e.source);
  return out;
}

std::string answer_body(const events::Event& e, const InlineAnswer& a) {
  auto out = identity_fields(e);
  out += ",\"decision\":";
  events::append_json_string(out, *a.decision);
  out += ",\"score\":" + std::to_string(a.score) + ",\"rule_set_version\":";
  events::append_json_string(out, a.rule_set_version);
  out += ",\"rules\":[";
  for (std::size_t i = 0; i < a.hits.size(); ++i) {
    out += i ? ",{\"id\":" : "{\"id\":";
    events::append_json_string(out, a.hits[i].rule_id);
    out += ",\"score\":" + std::to_string(a.hits[i].score) + ",\"explanation\":";
    events::append_json_string(out, a.hits[i].explanation);
    out += "}";
  }
  out += std::string("],\"decided\":\"") + (a.decided_now ? "now" : "before") + "\",\"first_door\":\"" +
         (a.first_topic == store::kInlineTopic ? "inline" : "stream") + "\",\"fallback\":false}\n";
  return out;
}

std::string fallback_body(const events::Event& e, rules::Decision fallback, const char* reason) {
  return identity_fields(e) + ",\"decision\":\"" + rules::to_string(fallback) +
         "\",\"fallback\":true,\"fallback_reason\":\"" + reason + "\"}\n";
}

struct Handler {
  DecisionDesk& desk;
  DecisionApiSettings settings;
  DecisionMetrics& metrics;

  ops::HttpResponse operator()(const ops::HttpRequest& request) const {
    auto started = Clock::now();
    auto response = handle(request, started);
    metrics.latency.Observe(std::chrono::duration<double>(Clock::now() - started).count());
    return response;
  }

  ops::HttpResponse handle(const ops::HttpRequest& request, Clock::time_point started) const {
    if (request.path != "/v1/decisions") return metrics.requests("not_found").Increment(), error(404, "not found");
    if (request.method != "POST") return error(405, "POST a TransactionRecorded event to /v1/decisions");
    if (!authorised(request.authorization, settings.token)) {
      metrics.requests("unauthorised").Increment();
      auto refused = error(401, "a bearer token is required");
      refused.headers.emplace_back("WWW-Authenticate", "Bearer");
      return refused;
    }
    // One decoder per worker thread: it keeps its parser's buffers between requests.
    thread_local std::unique_ptr<events::Decoder> decoder;
    if (!decoder) decoder = std::make_unique<events::Decoder>(settings.limits);
    auto decoded = decoder->decode({std::nullopt, {}, request.body});
    if (!decoded.event) return metrics.requests("invalid").Increment(), error(400, decoded.error);
    if (auto named = named_source(request.body); named && *named != settings.event_source)
      return metrics.requests("invalid").Increment(),
             error(400, "event_source '" + *named + "' is not this door's: it applies ids of source '" +
                            settings.event_source + "' (decisions.event_source), which the stream's copies carry");
    decoded.event->source = settings.event_source;
    const auto& event = *decoded.event;
    if (settings.retention_days > 0) {
      auto horizon = store::retention_horizon(events::wall_clock_now(), settings.retention_days);
      if (event.occurred_at < horizon)
        return metrics.requests("invalid").Increment(),
               error(400, "occurred_at " + events::format_rfc3339(event.occurred_at) +
                              " is before the deduplication window, which starts at " +
                              events::format_rfc3339(horizon));
    }
    auto digest = events::body_digest(events::to_json(event));
    auto ticket = desk.submit(event, digest);
    // Past the deadline the request is abandoned, unless its group is committing already: then
    // the answer is that commit's, a little late, so that the decision stored is the one answered.
    if (ticket.answer.wait_until(started + settings.deadline) != std::future_status::ready && ticket.abandon())
      return fall_back(event, "deadline");
    InlineAnswer answer;
    try {
      answer = ticket.answer.get();
    } catch (const DeskUnavailable&) {
      return fall_back(event, "unavailable");
    } catch (const DeskRefused& e) {
      return metrics.requests("refused").Increment(), error(422, e.what());
    }
    if (answer.applied_digest && *answer.applied_digest != digest) {
      metrics.requests("conflict").Increment();
      return error(409, "event " + event.event_id +
                            " was applied before with other content; the stored decision stands and this "
                            "request is recorded as a conflicting duplicate");
    }
    if (!answer.decision) {
      metrics.requests("conflict").Increment();
      return error(409, "event " + event.event_id + " was applied longer ago than its decision is kept");
    }
    metrics.requests(answer.decided_now ? "decided" : "already_decided").Increment();
    metrics.decisions(*answer.decision).Increment();
    return json(200, answer_body(event, answer));
  }

  ops::HttpResponse fall_back(const events::Event& event, const char* reason) const {
    metrics.requests("fallback").Increment();
    metrics.fallbacks(reason).Increment();
    return json(200, fallback_body(event, settings.fallback, reason));
  }
};

}  // namespace

DecisionMetrics::DecisionMetrics(prometheus::Registry& r)
    : requests_family(BuildCounter()
                          .Name("fraud_decision_requests_total")
                          .Help("POST /v1/decisions requests, by outcome")
                          .Register(r)),
      decisions_family(BuildCounter()
                           .Name("fraud_inline_decisions_total")
                           .Help("Inline answers from the rules (fallbacks aside), by decision")
                           .Register(r)),
      fallbacks_family(BuildCounter()
                           .Name("fraud_decision_fallbacks_total")
                           .Help("Inline answers with the configured fallback decision, by reason")
                           .Register(r)),
      // Buckets that resolve a millisecond where the targets are (p99 10 ms, p99.9 25 ms).
      latency(
          BuildHistogram()
              .Name("fraud_decision_latency_seconds")
              .Help("From a POST /v1/decisions request read to its answer, fallbacks included")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007,
                                                               0.008,  0.009, 0.01,  0.011, 0.012, 0.015, 0.02,  0.025,
                                                               0.03,   0.05,  0.1,   0.15,  0.25,  0.5,   1})),
      group_requests(BuildHistogram()
                         .Name("fraud_decision_group_requests")
                         .Help("Requests per committed transaction of the inline door (group commit)")
                         .Register(r)
                         .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256})) {
  for (const char* outcome :
       {"decided", "already_decided", "fallback", "conflict", "invalid", "refused", "unauthorised", "not_found"})
    requests(outcome);
  for (const char* decision : {"allow", "review", "block"}) decisions(decision);
  for (const char* reason : {"deadline", "unavailable"}) fallbacks(reason);
}

prometheus::Counter& DecisionMetrics::requests(const char* outcome) {
  return requests_family.Add({{"outcome", outcome}});
}

prometheus::Counter& DecisionMetrics::decisions(const std::string& decision) {
  return decisions_family.Add({{"decision", decision}});
}

prometheus::Counter& DecisionMetrics::fallbacks(const char* reason) {
  return fallbacks_family.Add({{"reason", reason}});
}

ops::HttpRequestHandler decision_api(DecisionDesk& desk, const DecisionApiSettings& settings,
                                     DecisionMetrics& metrics) {
  return Handler{desk, settings, metrics};
}

}  // namespace fraud::consumer
