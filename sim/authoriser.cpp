#include "sim/authoriser.h"

#include <utility>  // Boost 1.74's asio uses std::exchange without including it

#include <simdjson.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <stdexcept>

#include "events/encode.h"

namespace fraud::sim {

namespace beast = boost::beast;
namespace http = beast::http;

Authoriser::Authoriser(const std::string& url, std::string token) : token_(std::move(token)) {
  constexpr std::string_view kScheme = "http://";
  auto rest = std::string_view(url).substr(url.starts_with(kScheme) ? kScheme.size() : 0);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) throw std::invalid_argument("--authorise-url must be http://host:port");
  host_ = rest.substr(0, colon), port_ = rest.substr(colon + 1);
  while (!port_.empty() && port_.back() == '/') port_.pop_back();
}

Authorisation Authoriser::authorise(const events::Event& event) const {
  Authorisation answer;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(1));
    stream.connect(boost::asio::ip::tcp::resolver(io).resolve(host_, port_));
    http::request<http::string_body> request{http::verb::post, "/v1/decisions", 11};
    request.set(http::field::host, host_);
    request.set(http::field::authorization, "Bearer " + token_);
    request.set(http::field::content_type, "application/json");
    request.body() = events::to_json(event);
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (response.result() != http::status::ok) return answer;
    simdjson::dom::parser parser;
    simdjson::dom::element body;
    std::string_view decision;
    if (parser.parse(response.body()).get(body) || body["decision"].get(decision)) return answer;
    answer.decision = std::string(decision);
    bool fallback = false;
    answer.fallback = !body["fallback"].get(fallback) && fallback;
    answer.answered = true;
  } catch (const std::exception&) {
    // No answer: the bank goes on without one.
  }
  return answer;
}

}  // namespace fraud::sim
