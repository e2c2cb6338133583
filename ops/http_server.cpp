#include "ops/http_server.h"

#include <utility>  // Boost 1.74's asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <future>
#include <optional>
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
  if (colon == std::string::npos) throw std::runtime_error("listen address '" + address + "' is not host:port");
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address.substr(0, colon), ec);
  if (ec) throw std::runtime_error("listen address '" + address + "' has no IP address: " + ec.message());
  return {ip, static_cast<unsigned short>(std::stoi(address.substr(colon + 1)))};
}

using Routes = std::vector<std::pair<std::string, HttpHandler>>;

/// The operator's endpoints: GET of an exact path.
HttpRequestHandler route(Routes routes) {
  return [routes = std::move(routes)](const HttpRequest& request) -> HttpResponse {
    if (request.method != "GET") return {405, "method not allowed\n"};
    for (const auto& [path, handler] : routes)
      if (path == request.path) return handler();
    return {404, "not found\n"};
  };
}

HttpRequest to_request(const http::request<http::string_body>& from) {
  HttpRequest request;
  request.method = std::string(from.method_string());
  std::string target(from.target());
  auto question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) request.query = target.substr(question + 1);
  if (auto it = from.find(http::field::authorization); it != from.end())
    request.authorization = std::string(it->value());
  if (auto it = from.find("Idempotency-Key"); it != from.end()) request.idempotency_key = std::string(it->value());
  request.body = from.body();
  return request;
}

HttpResponse respond(const HttpRequestHandler& handler, const http::request<http::string_body>& request) {
  try {
    return handler(to_request(request));
  } catch (const std::exception& e) {
    return {500, std::string(e.what()) + "\n"};
  }
}

/// Connections served at once, at most; more are closed on arrival. Prometheus and the
/// probes need a handful: the cap keeps a flood from taking the process's file descriptors.
constexpr std::size_t kMaxConnections = 64;

/// The requests of one connection. Scrapes and probes are small: one request per connection
/// keeps this simple, and a client that stalls is cut off after five seconds. A server with
/// `keep_alive` serves one request after another on a connection whose client asks for it
/// (the inline decision API's callers, whom a handshake per request would cost a round trip
/// and a port in TIME_WAIT); such a connection idle for five seconds is closed.
struct Session : std::enable_shared_from_this<Session> {
  Session(tcp::socket socket, const HttpRequestHandler& h, asio::thread_pool* pool, std::set<Session*>& all, bool keep,
          const bool& server_stopping)
      : stream(std::move(socket)), handler(h), workers(pool), live(all), keep_alive(keep), stopping(server_stopping) {
    live.insert(this);
  }
  ~Session() { live.erase(this); }  // on the server's one thread, like the constructor

  void start() {
    parser.emplace();
    parser->body_limit(kMaxRequestBody);
    stream.expires_after(std::chrono::seconds(5));
    http::async_read(stream, buffer, *parser, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      if (!ec) self->answer();
      else if (ec == http::error::body_limit) self->reply({413, "request body too large\n"});
    });
  }

  // The handler's answer: on this thread, or on a worker, whose answer comes back to this
  // thread to be written. The worker hands its reference on rather than dropping it, so the
  // session always ends on this thread, where `live` is touched.
  void answer() {
    if (stopping) return reply({503, "the server is stopping\n"});
    if (!workers) return reply(respond(handler, parser->get()));
    stream.expires_never();  // the handler bounds its own time; the reply gets five seconds
    asio::post(*workers, [self = shared_from_this()]() mutable {
      auto executor = self->stream.get_executor();
      auto answered = respond(self->handler, self->parser->get());
      asio::post(executor, [self = std::move(self), answered = std::move(answered)]() mutable {
        self->reply(std::move(answered));
      });
    });
  }

  void reply(HttpResponse answer);

  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;  ///< a new one per request
  http::response<http::string_body> response;
  const HttpRequestHandler& handler;
  asio::thread_pool* workers;  ///< where the handler runs; none: on the server's thread
  std::set<Session*>& live;    ///< the server's open sessions, to close them when it stops
  bool keep_alive;
  const bool& stopping;  ///< the server's; read and written on its thread only
};

}  // namespace

struct HttpServer::Impl {
  Impl(const std::string& address, HttpRequestHandler h, std::size_t worker_count, bool keep)
      : handler(std::move(h)), keep_alive(keep), acceptor(io, parse_endpoint(address)), retry(io) {
    if (worker_count > 0) workers = std::make_unique<asio::thread_pool>(worker_count);
    accept();
    thread = std::thread([this] { io.run(); });
  }

  // Ends every operation, so that io.run() returns once their handlers have run while all
  // they refer to still lives. (Stopping the io_context instead left pending sessions to be
  // destroyed inside its destructor, after the members they point at.)
  // No new work first: the acceptor closes, and a request read from now on is answered 503
  // on the server's thread, so joining the workers ends however busy the clients are. Then the
  // handlers in flight finish (each bounds its own time) and their answers are written, while
  // the guard keeps the server's thread running for them. Then every connection closes.
  ~Impl() {
    auto guard = asio::make_work_guard(io);
    std::promise<void> closed;
    asio::post(io, [&] {
      stopping = true;
      acceptor.close();
      retry.cancel();
      closed.set_value();
    });
    closed.get_future().wait();
    if (workers) workers->join();
    asio::post(io, [this] {
      for (auto* session : sessions) {
        boost::system::error_code ignored;
        session->stream.socket().close(ignored);
      }
    });
    guard.reset();
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
    std::make_shared<Session>(std::move(socket), handler, workers.get(), sessions, keep_alive, stopping)->start();
  }

  HttpRequestHandler handler;
  bool keep_alive;
  bool stopping = false;  ///< touched on the server's thread only
  std::unique_ptr<asio::thread_pool> workers;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  std::set<Session*> sessions;  ///< open ones; touched only on the server's thread
  std::atomic<std::uint64_t> accept_errors{0};
  std::thread thread;
};

void Session::reply(HttpResponse answer) {
  // The handler ran on this thread; the answer gets its own five seconds to be written.
  stream.expires_after(std::chrono::seconds(5));
  bool again = keep_alive && !stopping && parser->get().keep_alive() && answer.status != 413;  // a 413's body: unread
  response = {};
  response.result(static_cast<http::status>(answer.status));
  response.version(parser->get().version());
  response.set(http::field::content_type, answer.content_type);
  for (const auto& [name, value] : answer.headers) response.set(name, value);
  response.keep_alive(again);
  response.body() = std::move(answer.body);
  response.prepare_payload();
  http::async_write(stream, response, [self = shared_from_this(), again](boost::system::error_code ec, std::size_t) {
    if (!ec && again) return self->start();
    boost::system::error_code ignored;
    self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  });
}

HttpServer::HttpServer(const std::string& address, std::vector<std::pair<std::string, HttpHandler>> routes)
    : impl_(std::make_unique<Impl>(address, route(std::move(routes)), 0, false)) {}

HttpServer::HttpServer(const std::string& address, HttpRequestHandler handler, std::size_t workers, bool keep_alive)
    : impl_(std::make_unique<Impl>(address, std::move(handler), workers, keep_alive)) {}

HttpServer::~HttpServer() = default;

unsigned short HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

std::uint64_t HttpServer::accept_errors() const { return impl_->accept_errors.load(); }

}  // namespace fraud::ops
