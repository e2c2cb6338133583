#include "tests/support/http.h"

#include <utility>  // before Boost 1.74's asio, which needs std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace fraud::testing {

std::optional<std::string> http_call(unsigned short port, const HttpCall& call, int* status) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> request{http::string_to_verb(call.method), call.target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!call.authorization.empty()) request.set(http::field::authorization, call.authorization);
    if (!call.body.empty()) request.set(http::field::content_type, "application/json");
    if (!call.idempotency_key.empty()) request.set("Idempotency-Key", call.idempotency_key);
    request.body() = call.body;
    request.prepare_payload();
    http::write(stream, request);
    if (call.hang_up) return std::nullopt;
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (status) *status = static_cast<int>(response.result_int());
    return response.body();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> http_get(unsigned short port, const std::string& target, int* status) {
  return http_call(port, {"GET", target}, status);
}

unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += '%', out += kHex[c >> 4], out += kHex[c & 15];
  }
  return out;
}

}  // namespace fraud::testing
