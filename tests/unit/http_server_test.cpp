// The operator endpoint keeps answering probes and scrapes through what a busy process meets.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // Boost 1.74's asio uses std::exchange without including it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "ops/http_server.h"

namespace {

// A bare GET for a status, like http_call() in tests/support/http.cpp: unit tests do not
// link the integration support (it starts processes and opens databases).
std::optional<int> status_of(unsigned short port, const char* target) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::empty_body> request{http::verb::get, target, 11};
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return static_cast<int>(response.result_int());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

template <typename Condition>
bool within(std::chrono::seconds limit, Condition condition) {
  for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

}  // namespace

TEST_CASE("the operator endpoint keeps accepting after running out of file descriptors") {
  fraud::ops::HttpServer server("127.0.0.1:0", {{"/healthz", [] { return fraud::ops::HttpResponse{200, "ok\n"}; }}});
  REQUIRE(status_of(server.port(), "/healthz") == 200);

  // A client socket made first; then no descriptor is left for the server to accept it with.
  int client = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(client >= 0);
  rlimit before{};
  REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
  rlimit starved = before;
  starved.rlim_cur = static_cast<rlim_t>(client + 1);  // every descriptor above the client's is refused
  REQUIRE(setrlimit(RLIMIT_NOFILE, &starved) == 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server.port());
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  int connected = connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address);
  bool failed_to_accept = within(std::chrono::seconds(10), [&] { return server.accept_errors() > 0; });
  REQUIRE(setrlimit(RLIMIT_NOFILE, &before) == 0);
  close(client);
  CHECK(connected == 0);
  CHECK(failed_to_accept);
  // It accepts again once descriptors are back.
  CHECK(within(std::chrono::seconds(10), [&] { return status_of(server.port(), "/healthz") == 200; }));
}

TEST_CASE("connections past the cap are closed on arrival, and the endpoint answers again once idle ones expire") {
  fraud::ops::HttpServer server("127.0.0.1:0", {{"/healthz", [] { return fraud::ops::HttpResponse{200, "ok\n"}; }}});
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(server.port());
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  // 70 clients that connect and say nothing, as a flood or a stuck scraper would.
  std::vector<int> idle;
  for (int i = 0; i < 70; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    idle.push_back(fd);
  }
  auto closed_by_server = [&] {
    int closed = 0;
    for (int fd : idle) {
      char byte;
      closed += recv(fd, &byte, 1, MSG_DONTWAIT) == 0;  // end of file: the server closed it
    }
    return closed;
  };
  // The 64 it serves wait for their request for five seconds; the other six are closed at once.
  CHECK(within(std::chrono::seconds(4), [&] { return closed_by_server() >= 6; }));
  CHECK(closed_by_server() <= 6);
  CHECK(within(std::chrono::seconds(15), [&] { return status_of(server.port(), "/healthz") == 200; }));
  for (int fd : idle) close(fd);
}

TEST_CASE("a keep-alive server answers one request after another on a connection, and the others close it") {
  namespace beast = boost::beast;
  namespace http = beast::http;
  auto answers = [](bool keep_alive) {
    fraud::ops::HttpServer server(
        "127.0.0.1:0", [](const fraud::ops::HttpRequest& r) { return fraud::ops::HttpResponse(200, r.body); }, 2,
        keep_alive);
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    std::vector<std::string> bodies;
    try {
      for (const char* body : {"first", "second", "third"}) {
        http::request<http::string_body> request{http::verb::post, "/", 11};
        request.body() = body;
        request.prepare_payload();
        http::write(stream, request);
        beast::flat_buffer buffer;
        http::response<http::string_body> response;
        http::read(stream, buffer, response);
        bodies.push_back(response.body());
      }
    } catch (const std::exception&) {
      // closed by the server
    }
    return bodies;
  };
  CHECK(answers(true) == std::vector<std::string>{"first", "second", "third"});
  CHECK(answers(false) == std::vector<std::string>{"first"});
}
