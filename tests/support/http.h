#pragma once
// Requests to a process of ours on 127.0.0.1: its /metrics, /readyz, the console's API.

#include <optional>
#include <string>

namespace fraud::testing {

/// A request to http://127.0.0.1:`port`: a body is sent as JSON.
struct HttpCall {
  std::string method, target, authorization = {}, body = {}, idempotency_key = {};
  /// Send the request and close the connection without reading the answer, as a client whose
  /// own timeout passed would.
  bool hang_up = false;
};
/// The response body to `call`, or nothing when there was none; `status` receives the HTTP status.
std::optional<std::string> http_call(unsigned short port, const HttpCall& call, int* status = nullptr);
/// The body of GET http://127.0.0.1:`port``target`, or nothing when it cannot be fetched;
/// `status` receives the HTTP status.
std::optional<std::string> http_get(unsigned short port, const std::string& target, int* status = nullptr);

/// A port on 127.0.0.1 that was free a moment ago.
unsigned short free_port();

/// Percent-encodes `text` for a URL query.
std::string url_encode(const std::string& text);

}  // namespace fraud::testing
