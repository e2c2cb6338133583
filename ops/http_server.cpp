#include "ops/http_server.h"

#include <utility>  // Boost 1.74's asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>

#include "ops/log.h"

namespace fraud::ops {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

tcp::endpoint parse_endpoint(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics.listen: '" + address + "' is not host:port");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.substr(0, colon), ec);
  if (ec) throw std::runtime_error("metrics.listen: '" + address + "' has no IP address: " + ec.message());
  return {ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

using Routes = std::vector<std::pair<std::string, HttpHandler>>;

HttpResponse respond(const Routes& routes, const http::request<http::string_body>& request) {
  if (request.method() != http::verb::get) return {405, "method not allowed\n"};
  std::string target(request.target());
  target = target.substr(0, target.find('?'));
  for (const auto& [path, handler] : routes) {
    if (path != target) continue;
    try {
      return handler();
    } catch (const std::exception& e) {
      return {500, std::string(e.what()) + "\n"};
    }
  }
  return {404, "not found\n"};
}

/// Connections served at once, at most; more are closed on arrival. Prometheus and the
/// probes need a handful: the cap keeps a flood from taking the process's file descriptors.
constexpr std::size_t kMaxConnections = 64;

/// One request on one connection. Scrapes and probes are small: one request per connection
/// keeps this simple, and a client that stalls is cut off after five seconds.
struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket socket, const Routes& r, std::set<Session*>& all)
      : stream(std::move(socket)), routes(r), live(all) {
    live.insert(this);
  }
  ~Session() { live.erase(this); }  // on the server's one thread, like the constructor

  void start() {
    stream.expires_after(std::chrono::seconds(5));
    http::async_read(stream, buffer, request, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (!ec) self->reply();
    });
  }

  void reply();

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response<http::string_body> response;
  const Routes& routes;
  std::set<Session*>& live;  ///< the server's open sessions, to close them when it stops
};

}  // namespace

struct HttpServer::Impl {
  Impl(const std::string& address, std::vector<std::pair<std::string, HttpHandler>> r)
      : routes(std::move(r)), acceptor(io, parse_endpoint(address)), retry(io) {
    accept();
    thread = std::thread([this] { io.run(); });
  }

  // Ends every operation, so that io.run() returns once their handlers have run while all
  // they refer to still lives. (Stopping the io_context instead left pending sessions to be
  // destroyed inside its destructor, after the members they point at.)
  ~Impl() {
    asio::post(io, [this] {
      acceptor.close();
      retry.cancel();
      for (auto* session : sessions) {
        boost::system::error_code ignored;
        session->stream.socket().close(ignored);
      }
    });
    if (thread.joinable()) thread.join();
  }

  // Keeps accepting whatever happens: an error such as EMFILE (out of file descriptors) is
  // waited out, never the end of the endpoint that probes and scrapes rely on.
  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;  // shutting down
      if (ec) {
        ++accept_errors;
        log::warn("operator endpoint: accept failed; retrying", {{"error", ec.message()}});
        retry.expires_after(std::chrono::milliseconds(100));
        retry.async_wait([this](boost::system::error_code waited) {
          if (!waited) accept();
        });
        return;
      }
      serve(std::move(socket));
      accept();
    });
  }

  void serve(tcp::socket socket) {
    if (sessions.size() >= kMaxConnections) return;  // the socket closes as it goes out of scope
    std::make_shared<Session>(std::move(socket), routes, sessions)->start();
  }

  std::vector<std::pair<std::string, HttpHandler>> routes;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  std::set<Session*> sessions;  ///< open ones; touched only on the server's thread
  std::atomic<std::uint64_t> accept_errors{0};
  std::thread thread;
};

void Session::reply() {
  auto answer = respond(routes, request);
  response.result(static_cast<http::status>(answer.status));
  response.version(request.version());
  response.set(http::field::content_type, answer.content_type);
  response.keep_alive(false);
  response.body() = std::move(answer.body);
  response.prepare_payload();
  http::async_write(stream, response, [self = shared_from_this()](boost::system::error_code, std::size_t) {
    boost::system::error_code ignored;
    self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  });
}

HttpServer::HttpServer(const std::string& address, std::vector<std::pair<std::string, HttpHandler>> routes)
    : impl_(std::make_unique<Impl>(address, std::move(routes))) {}

HttpServer::~HttpServer() = default;

unsigned short HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

std::uint64_t HttpServer::accept_errors() const { return impl_->accept_errors.load(); }

}  // namespace fraud::ops
