#pragma once
// The operator's port: /metrics for Prometheus, /healthz and /readyz for Kubernetes probes.
// One thread of its own (Boost.Asio + Beast), so a slow scrape never stalls the batch loop.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace fraud::ops {

/// What each endpoint answers: a status code and a body.
struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

using HttpHandler = std::function<HttpResponse()>;

class HttpServer {
 public:
  /// Listens on `address` ("host:port"; port 0 picks a free one) and serves GET requests
  /// for the paths in `routes` until destroyed. Throws when it cannot listen.
  HttpServer(const std::string& address, std::vector<std::pair<std::string, HttpHandler>> routes);
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
