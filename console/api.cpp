#include "console/api.h"

#include <simdjson.h>

#include <cctype>
#include <charconv>
#include <cstring>

#include "events/json_text.h"
#include "events/money.h"
#include "ops/log.h"

namespace fraud::console {
namespace {

ops::HttpResponse json(int status, std::string body) {
  ops::HttpResponse response(status, std::move(body), "application/json");
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

ops::HttpResponse error(int status, std::string_view message) {
  std::string body = "{\"error\":";
  events::append_json_string(body, message);
  return json(status, body + "}");
}

/// A query string's value for `name`, percent-decoded ('+' is a space); empty when absent.
std::string query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) != name || eq == std::string_view::npos) continue;
    std::string value;
    auto raw = pair.substr(eq + 1);
    for (std::size_t i = 0; i < raw.size(); ++i) {
      int byte = 0;
      if (raw[i] == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(raw[i + 2])) &&
          std::from_chars(raw.data() + i + 1, raw.data() + i + 3, byte, 16).ptr == raw.data() + i + 3) {
        value += static_cast<char>(byte);
        i += 2;
      } else {
        value += raw[i] == '+' ? ' ' : raw[i];
      }
    }
    return value;
  }
  return {};
}

/// `text` as a positive integer, or nothing.
std::optional<std::int64_t> positive(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0) return std::nullopt;
  return value;
}

/// A request's body as a JSON object, parsed once.
class JsonBody {
 public:
  explicit JsonBody(const std::string& text) {
    valid_ = parser_.parse(text).get(root_) == simdjson::SUCCESS && root_.is_object();
  }
  /// False when the body is not a JSON object, or a field read as an integer was not one.
  bool valid() const { return valid_; }

  /// The string field `name`; nothing when absent or not a string.
  std::optional<std::string> text(const char* name) const {
    std::string_view value;
    if (!valid_ || root_[name].get(value) != simdjson::SUCCESS) return std::nullopt;
    return std::string(value);
  }

  /// The integer field `name`, or nothing when absent; present but not an integer makes the
  /// body invalid.
  std::optional<std::int64_t> integer(const char* name) {
    if (!valid_) return std::nullopt;
    auto field = root_[name];
    if (field.error() == simdjson::NO_SUCH_FIELD) return std::nullopt;
    std::int64_t value = 0;
    valid_ = field.get(value) == simdjson::SUCCESS;
    return valid_ ? std::optional(value) : std::nullopt;
  }

 private:
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  bool valid_ = false;
};

/// {"EUR":2,"JPY":0,…}: how many decimals each currency's minor units have, from the same
/// ISO 4217 table the service decodes amounts with.
std::string currency_exponents() {
  std::string body = "{";
  for (auto code : events::currency_codes()) {
    if (body.size() > 1) body += ',';
    body += '"' + std::string(code) + "\":" + std::to_string(*events::currency_exponent(code));
  }
  return body + "}";
}

ops::HttpResponse static_file(const std::string& path) {
  for (std::size_t i = 0; i < kWebFileCount; ++i)
    if (path == kWebFiles[i].path) return {200, kWebFiles[i].body, kWebFiles[i].content_type};
  return {404, "not found\n"};
}

}  // namespace

ops::HttpResponse ConsoleApi::handle(const ops::HttpRequest& request) {
  ops::HttpResponse response;
  try {
    if (request.path == "/healthz") {
      response = {200, "ok\n"};
    } else if (request.path.rfind("/api/", 0) != 0) {
      response = request.method == "GET" ? static_file(request.path == "/" ? "/index.html" : request.path)
                                         : ops::HttpResponse{405, "method not allowed\n"};
    } else if (auto analyst = tokens_.authenticate(request.authorization)) {
      response = api(request, *analyst);
    } else {
      response = error(401, "a valid bearer token is required");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
  } catch (const cases::CaseNotFound& e) {
    response = error(404, e.what());
  } catch (const cases::CaseInvalid& e) {
    response = error(400, e.what());
  } catch (const cases::CaseRefused& e) {  // closed already
    response = error(409, e.what());
  } catch (const cases::DeskBusy& e) {
    response = error(503, e.what());
    response.headers.emplace_back("Retry-After", "1");
  } catch (const std::exception& e) {
    ops::log::error("console request failed", {{"path", request.path}, {"error", e.what()}});
    response = error(500, "internal error; the console's log has the detail");
  }
  // The page loads only its own files, cannot be framed, and types are never sniffed.
  response.headers.emplace_back("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

ops::HttpResponse ConsoleApi::api(const ops::HttpRequest& request, const Analyst& analyst) {
  if (request.path == "/api/me") {
    std::string body = "{\"name\":";
    events::append_json_string(body, analyst.name);
    return json(200, body + ",\"role\":\"" + to_string(analyst.role) + "\"}");
  }
  if (request.path == "/api/currencies") return json(200, currency_exponents());
  if (request.path == "/api/rules") {
    auto days = positive(query_value(request.query, "days"));
    if (!query_value(request.query, "days").empty() && (!days || *days > 400))
      return error(400, "days must be 1 to 400");
    return json(200, cases_.rule_performance(static_cast<int>(days.value_or(30))));
  }
  if (request.path == "/api/lists" || request.path.rfind("/api/lists/", 0) == 0) return list_action(request, analyst);
  if (request.path == "/api/cases") {
    if (request.method != "GET") return error(405, "GET only");
    cases::QueueFilter filter{query_value(request.query, "state"), query_value(request.query, "decision"),
                              query_value(request.query, "rule"), 100};
    if (auto limit = query_value(request.query, "limit"); !limit.empty()) {
      auto n = positive(limit);
      if (!n || *n > 1000) return error(400, "limit must be 1 to 1000");
      filter.limit = static_cast<int>(*n);
    }
    return json(200, cases_.queue(filter));
  }
  constexpr std::string_view kCase = "/api/cases/";
  if (request.path.rfind(kCase, 0) == 0) {
    std::string_view rest = std::string_view(request.path).substr(kCase.size());
    auto slash = rest.find('/');
    auto id = positive(rest.substr(0, slash));
    if (!id) return error(404, "no such case");
    if (slash == std::string_view::npos) {
      if (request.method != "GET") return error(405, "GET only");
      auto found = cases_.find(*id);
      return found ? json(200, *found) : error(404, "no such case");
    }
    if (request.method != "POST") return error(405, "POST only");
    return case_action(request, analyst, *id, std::string(rest.substr(slash + 1)));
  }
  return error(404, "no such endpoint");
}

ops::HttpResponse ConsoleApi::case_action(const ops::HttpRequest& request, const Analyst& analyst, std::int64_t case_id,
                                          const std::string& action) {
  JsonBody body(request.body);
  if (action == "assign") {
    auto assignee = body.text("assignee");
    if (!assignee || assignee->empty()) return error(400, "the body must be {\"assignee\": \"name\"}");
    if (*assignee != analyst.name && analyst.role != Role::lead)
      return error(403, "an analyst may assign a case only to themself");
    cases_.assign(case_id, *assignee, analyst.name);
    return json(200, "{\"case_id\":" + std::to_string(case_id) + "}");
  }
  if (action == "close") {
    auto text = body.text("disposition");
    auto disposition = text ? cases::parse_disposition(*text) : std::nullopt;
    if (!disposition) return error(400, "the body must be {\"disposition\": \"fraud|legitimate|unsure\"}");
    auto closed = cases_.close(case_id, *disposition, analyst.name);
    return json(200,
                "{\"case_id\":" + std::to_string(case_id) + ",\"labelled\":" + std::to_string(closed.labelled) + "}");
  }
  return error(404, "no such action; assign or close");
}

// GET /api/lists: the entries in force. POST /api/lists/{name}/entries {value, reason,
// days?}: adds one; an allow list (allow_…) lowers decisions, so only a lead adds to one.
// POST /api/lists/entries/{id}/end: ends one.
ops::HttpResponse ConsoleApi::list_action(const ops::HttpRequest& request, const Analyst& analyst) {
  if (request.path == "/api/lists") {
    if (request.method != "GET") return error(405, "GET only");
    return json(200, lists_.in_force());
  }
  if (request.method != "POST") return error(405, "POST only");
  std::string_view rest = std::string_view(request.path).substr(std::strlen("/api/lists/"));
  constexpr std::string_view kEntries = "entries/", kEnd = "/end";
  if (rest.rfind(kEntries, 0) == 0 && rest.size() > kEntries.size() + kEnd.size() &&
      rest.substr(rest.size() - kEnd.size()) == kEnd) {
    auto id = positive(rest.substr(kEntries.size(), rest.size() - kEntries.size() - kEnd.size()));
    if (!id) return error(404, "no such list entry");
    lists_.end(*id, analyst.name);
    return json(200, "{\"entry_id\":" + std::to_string(*id) + "}");
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash) != "/entries") return error(404, "no such endpoint");
  JsonBody body(request.body);
  cases::NewListEntry entry{std::string(rest.substr(0, slash)), body.text("value").value_or(""),
                            body.text("reason").value_or(""), std::nullopt};
  if (auto days = body.integer("days")) {
    if (*days < 1 || *days > 3650) return error(400, "days must be 1 to 3650");
    entry.days = static_cast<int>(*days);
  }
  if (!body.valid()) return error(400, "the body must be {\"value\": …, \"reason\": …, \"days\": N (optional)}");
  if (entry.list.rfind("allow_", 0) == 0 && analyst.role != Role::lead)
    return error(403, "only a lead may add to an allow list");
  auto id = lists_.add(entry, analyst.name);
  return json(201, "{\"entry_id\":" + std::to_string(id) + "}");
}

}  // namespace fraud::console
