#pragma once
// The operator's port: /metrics for Prometheus, /healthz and /readyz for Kubernetes probes;
// and the analysts' console (console/), which sees whole requests. One thread of its own
// (Boost.Asio + Beast), so a slow scrape never stalls the batch loop; the console's handlers
// run on worker threads besides.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fraud::ops {

/// What each endpoint answers: a status code, a body, and any further headers.
struct HttpResponse {
  HttpResponse(int status_code = 200, std::string text = {}, std::string type = "text/plain; charset=utf-8")
      : status(status_code), body(std::move(text)), content_type(std::move(type)) {}

  int status;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// A request as a handler of whole requests sees it. The body is at most kMaxRequestBody bytes.
struct HttpRequest {
  std::string method;  ///< "GET", "POST", …
  std::string path;    ///< the target before any '?'
  std::string query;   ///< after the '?', undecoded
  std::string authorization;
  std::string idempotency_key;  ///< the Idempotency-Key header, which makes a retried POST safe
  std::string body;
};

/// Requests with a larger body are answered 413 without reaching a handler.
inline constexpr std::size_t kMaxRequestBody = std::size_t{64} * 1024;

using HttpHandler = std::function<HttpResponse()>;
using HttpRequestHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  /// Listens on `address` ("host:port"; port 0 picks a free one) and serves GET requests
  /// for the paths in `routes` until destroyed. Throws when it cannot listen.
  HttpServer(const std::string& address, std::vector<std::pair<std::string, HttpHandler>> routes);
  /// Listens the same way and hands every request, whatever its method and path, to `handler`:
  /// on the server's thread, or with `workers` > 0 on that many threads of their own, so that a
  /// slow request (one that waits on a database) holds up no other. `handler` must then be
  /// safe to call from several threads at once. With `keep_alive`, a connection whose client
  /// asks for it serves one request after another (closed after five idle seconds); without,
  /// every answer closes its connection.
  HttpServer(const std::string& address, HttpRequestHandler handler, std::size_t workers = 0, bool keep_alive = false);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The port it listens on (useful with port 0).
  unsigned short port() const;

  /// Connections it failed to accept so far (out of file descriptors, …); each is retried.
  std::uint64_t accept_errors() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fraud::ops
