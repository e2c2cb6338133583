#include "console/api.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

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

/// Reads the query's optional parameter `name` into `into` when it is 1 to `most`; the refusal
/// when it is something else.
std::optional<std::string> read_bounded(std::string_view query, const char* name, std::int64_t most, int& into) {
  auto text = query_value(query, name);
  if (text.empty()) return std::nullopt;
  auto n = positive(text);
  if (!n || *n > most) return std::string(name) + " must be 1 to " + std::to_string(most);
  into = static_cast<int>(*n);
  return std::nullopt;
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

/// A flat JSON object, built field by field: a proposal's request.
class JsonObject {
 public:
  JsonObject& text(std::string_view name, std::string_view value) {
    field(name);
    events::append_json_string(body_, value);
    return *this;
  }
  JsonObject& number(std::string_view name, std::optional<std::int64_t> value) {
    field(name);
    body_ += value ? std::to_string(*value) : "null";
    return *this;
  }
  std::string str() const { return body_ + "}"; }

 private:
  void field(std::string_view name) {
    body_ += body_.size() > 1 ? "," : "";
    events::append_json_string(body_, name);
    body_ += ':';
  }
  std::string body_ = "{";
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

/// {"rules":[…],"lists":[…]}.
std::string catalog_json(const RuleCatalog& catalog) {
  auto names = [](const std::vector<std::string>& all) {
    std::string array = "[";
    for (const auto& name : all) {
      if (array.size() > 1) array += ',';
      events::append_json_string(array, name);
    }
    return array + "]";
  };
  return "{\"rules\":" + names(catalog.rules) + ",\"lists\":" + names(catalog.lists) + "}";
}

/// Refuses `name` when `known` does not hold it, naming those it does.
std::optional<ops::HttpResponse> unknown(const std::vector<std::string>& known, const std::string& name,
                                         const char* what) {
  if (std::find(known.begin(), known.end(), name) != known.end()) return std::nullopt;
  std::string message = std::string("the rules file declares no ") + what + " '" + name + "'; it declares:";
  for (const auto& k : known) message += " " + k;
  return error(400, message);
}

/// The id of "{id}/end", or nothing when `rest` is not of that shape.
std::optional<std::int64_t> id_to_end(std::string_view rest) {
  constexpr std::string_view kEnd = "/end";
  if (rest.size() <= kEnd.size() || rest.substr(rest.size() - kEnd.size()) != kEnd) return std::nullopt;
  return positive(rest.substr(0, rest.size() - kEnd.size()));
}

ops::HttpResponse static_file(const std::string& path) {
  for (std::size_t i = 0; i < kWebFileCount; ++i)
    if (path == kWebFiles[i].path) return {200, kWebFiles[i].body, kWebFiles[i].content_type};
  return {404, "not found\n"};
}

}  // namespace

ops::HttpResponse ConsoleApi::handle(const ops::HttpRequest& request) {
  ops::HttpResponse response;
  std::string actor;  // who asked, for the log; empty before authentication
  try {
    if (request.path == "/healthz") {
      response = {200, "ok\n"};
    } else if (request.path.rfind("/api/", 0) != 0) {
      response = request.method == "GET" ? static_file(request.path == "/" ? "/index.html" : request.path)
                                         : ops::HttpResponse{405, "method not allowed\n"};
    } else if (auto analyst = authenticate_(request.authorization)) {
      actor = analyst->name;
      if (limits_.allow(analyst->name, RateLimits::Clock::now())) {
        response = api(request, *analyst);
      } else {
        response = error(429, "too many requests; slow down");
        response.headers.emplace_back("Retry-After", "1");
      }
    } else {
      response = error(401, "a valid bearer token is required");
      response.headers.emplace_back("WWW-Authenticate", "Bearer");
    }
  } catch (const cases::CaseNotFound& e) {
    response = error(404, e.what());
  } catch (const cases::CaseInvalid& e) {
    response = error(400, e.what());
  } catch (const cases::NotPermitted& e) {
    response = error(403, e.what());
  } catch (const cases::KeyReused& e) {
    response = error(422, e.what());
  } catch (const cases::CaseRefused& e) {  // closed already, or changed since it was shown
    response = error(409, e.what());
  } catch (const cases::DeskBusy& e) {
    response = error(503, e.what());
    response.headers.emplace_back("Retry-After", "1");
  } catch (const std::exception& e) {
    ops::log::error("console request failed", {{"path", request.path}, {"error", e.what()}});
    response = error(500, "internal error; the console's log has the detail");
  }
  // Who was refused, and who read which case: what a security team asks of a console.
  bool refused = response.status == 401 || response.status == 403 || response.status == 429;
  bool case_read = request.method == "GET" && request.path.rfind("/api/cases/", 0) == 0 && response.status == 200;
  if (refused || case_read)
    ops::log::info(refused ? "console request refused" : "case read",
                   {{"actor", actor.empty() ? "(no valid token)" : actor},
                    {"method", request.method},
                    {"path", request.path},
                    {"status", std::to_string(response.status)}});
  // The page loads only its own files, cannot be framed, and types are never sniffed.
  response.headers.emplace_back("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'");
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return response;
}

ops::HttpResponse ConsoleApi::api(const ops::HttpRequest& request, const Analyst& analyst) {
  // Every change is safe to send again: the database keeps each key with its audit row.
  if (request.method == "POST" && request.idempotency_key.empty())
    return error(400,
                 "a POST needs an Idempotency-Key header (1 to 200 visible ASCII characters), the same on a retry");
  const cases::Change change{analyst, request.idempotency_key};
  if (request.path == "/api/me") {
    std::string body = "{\"name\":";
    events::append_json_string(body, analyst.name);
    return json(200, body + ",\"role\":\"" + to_string(analyst.role) + "\"}");
  }
  if (request.path == "/api/currencies") return json(200, currency_exponents());
  if (request.path == "/api/catalog") {
    if (request.method != "GET") return error(405, "GET only");
    return json(200, catalog_json(catalog_()));
  }
  if (request.path == "/api/suppressions" || request.path.rfind("/api/suppressions/", 0) == 0)
    return suppression_action(request, change);
  if (request.path == "/api/proposals" || request.path.rfind("/api/proposals/", 0) == 0)
    return proposal_action(request, change);
  if (request.path == "/api/rules") {
    int days = 30;
    if (auto refused = read_bounded(request.query, "days", 400, days)) return error(400, *refused);
    return json(200, cases_.rule_performance(days));
  }
  if (request.path == "/api/lists" || request.path.rfind("/api/lists/", 0) == 0) return list_action(request, change);
  if (request.path == "/api/cases") {
    if (request.method != "GET") return error(405, "GET only");
    cases::QueueFilter filter{query_value(request.query, "state"), query_value(request.query, "decision"),
                              query_value(request.query, "rule"), 0, 100};
    if (auto refused = read_bounded(request.query, "limit", 1000, filter.limit)) return error(400, *refused);
    if (auto refused = read_bounded(request.query, "min_age_hours", 8760, filter.min_age_hours))
      return error(400, *refused);
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
    if (rest.substr(slash + 1) == "links") return case_links(request, *id);
    if (request.method != "POST") return error(405, "POST only");
    return case_action(request, change, *id, std::string(rest.substr(slash + 1)));
  }
  return error(404, "no such endpoint");
}

ops::HttpResponse ConsoleApi::case_links(const ops::HttpRequest& request, std::int64_t case_id) {
  if (request.method != "GET") return error(405, "GET only");
  cases::LinkQuery query;
  if (auto refused = read_bounded(request.query, "days", 90, query.days)) return error(400, *refused);
  if (auto refused = read_bounded(request.query, "accounts", 200, query.accounts)) return error(400, *refused);
  return json(200, cases_.links(case_id, query));
}

ops::HttpResponse ConsoleApi::case_action(const ops::HttpRequest& request, const cases::Change& change,
                                          std::int64_t case_id, const std::string& action) {
  JsonBody body(request.body);
  if (action == "assign") {
    auto assignee = body.text("assignee");
    if (!assignee || assignee->empty()) return error(400, "the body must be {\"assignee\": \"name\"}");
    cases_.assign(case_id, *assignee, change);
    return json(200, "{\"case_id\":" + std::to_string(case_id) + "}");
  }
  if (action == "close") {
    auto text = body.text("disposition");
    auto disposition = text ? cases::parse_disposition(*text) : std::nullopt;
    auto version = body.integer("version");
    if (!disposition || !version || *version < 1 || *version > std::numeric_limits<int>::max())
      return error(400,
                   "the body must be {\"disposition\": \"fraud|legitimate|unsure\", \"version\": the case's version "
                   "as it was shown}");
    auto request_json = JsonObject()
                            .number("case", case_id)
                            .number("version", *version)
                            .text("disposition", cases::to_string(*disposition))
                            .str();
    return or_propose("case.close", request_json, change, [&] {
      auto closed = cases_.close(case_id, static_cast<int>(*version), *disposition, change);
      return json(200,
                  "{\"case_id\":" + std::to_string(case_id) + ",\"labelled\":" + std::to_string(closed.labelled) + "}");
    });
  }
  if (action == "comment") {
    auto text = body.text("body");
    if (!text || text->empty()) return error(400, "the body must be {\"body\": \"the comment\"}");
    auto id = cases_.comment(case_id, *text, change);
    return json(201, "{\"comment_id\":" + std::to_string(id) + "}");
  }
  return error(404, "no such action; assign, comment or close");
}

// GET /api/lists: the entries in force. POST /api/lists/{name}/entries {value, reason,
// days?}: adds one. POST /api/lists/entries/{id}/end: ends one. What lowers decisions (adding
// to an allow_ list, ending an entry of another) the database refuses as a direct change, and
// it is proposed for a second lead instead (or_propose).
ops::HttpResponse ConsoleApi::list_action(const ops::HttpRequest& request, const cases::Change& change) {
  if (request.path == "/api/lists") {
    if (request.method != "GET") return error(405, "GET only");
    return json(200, lists_.in_force());
  }
  if (request.method != "POST") return error(405, "POST only");
  std::string_view rest = std::string_view(request.path).substr(std::strlen("/api/lists/"));
  // entries/{id}/end ends one; {name}/entries adds to a list (one named "entries" too).
  constexpr std::string_view kEntries = "entries/";
  if (rest.rfind(kEntries, 0) == 0) {
    if (auto id = id_to_end(rest.substr(kEntries.size()))) {
      return or_propose("list.end", JsonObject().number("entry", *id).str(), change, [&] {
        lists_.end(*id, change);
        return json(200, "{\"entry_id\":" + std::to_string(*id) + "}");
      });
    }
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash) != "/entries") return error(404, "no such endpoint");
  std::string list(rest.substr(0, slash));
  JsonBody body(request.body);
  cases::NewListEntry entry{list, body.text("value").value_or(""), body.text("reason").value_or(""), std::nullopt};
  if (auto days = body.integer("days")) {
    if (*days < 1 || *days > 3650) return error(400, "days must be 1 to 3650");
    entry.days = static_cast<int>(*days);
  }
  if (!body.valid()) return error(400, "the body must be {\"value\": …, \"reason\": …, \"days\": N (optional)}");
  if (auto refused = unknown(catalog_().lists, entry.list, "runtime list")) return *refused;
  auto request_json = JsonObject()
                          .text("list", entry.list)
                          .text("value", entry.value)
                          .text("reason", entry.reason)
                          .number("days", entry.days)
                          .str();
  return or_propose("list.add", request_json, change,
                    [&] { return json(201, "{\"entry_id\":" + std::to_string(lists_.add(entry, change)) + "}"); });
}

// POST /api/suppressions {rule, account_id, reason, days?}: one rule does not fire for one
// account (14 days unless said). It lowers decisions as an allow list does, so it is
// proposed and made when a second lead approves it; anyone may end one early. POST
// /api/suppressions/{id}/end: ends one. Those in force are in GET /api/lists.
ops::HttpResponse ConsoleApi::suppression_action(const ops::HttpRequest& request, const cases::Change& change) {
  if (request.method != "POST") return error(405, "POST only");
  constexpr std::string_view kOne = "/api/suppressions/";
  if (request.path.rfind(kOne, 0) == 0) {
    auto id = id_to_end(std::string_view(request.path).substr(kOne.size()));
    if (!id) return error(404, "no such suppression");
    lists_.end_suppression(*id, change);
    return json(200, "{\"suppression_id\":" + std::to_string(*id) + "}");
  }
  JsonBody body(request.body);
  cases::NewSuppression suppression{body.text("rule").value_or(""), body.text("account_id").value_or(""),
                                    body.text("reason").value_or("")};
  if (auto days = body.integer("days")) {
    if (*days < 1 || *days > 365) return error(400, "days must be 1 to 365");
    suppression.days = static_cast<int>(*days);
  }
  if (!body.valid() || suppression.account.empty() || suppression.reason.empty())
    return error(400, "the body must be {\"rule\": …, \"account_id\": …, \"reason\": …, \"days\": N (optional, 14)}");
  // Account ids compare exactly: a pasted id with a space around it would suppress nothing.
  if (std::isspace(static_cast<unsigned char>(suppression.account.front())) ||
      std::isspace(static_cast<unsigned char>(suppression.account.back())))
    return error(400, "account_id has a space at its start or end");
  if (auto refused = unknown(catalog_().rules, suppression.rule, "rule")) return *refused;
  auto request_json = JsonObject()
                          .text("rule", suppression.rule)
                          .text("account", suppression.account)
                          .text("reason", suppression.reason)
                          .number("days", suppression.days)
                          .str();
  return or_propose("suppression.add", request_json, change, [&] {
    return json(201, "{\"suppression_id\":" + std::to_string(lists_.suppress(suppression, change)) + "}");
  });
}

// GET /api/proposals: those waiting for a second lead. POST /api/proposals/{id}/approve and
// /reject: a lead decides one (the database refuses the proposer's own approval).
ops::HttpResponse ConsoleApi::proposal_action(const ops::HttpRequest& request, const cases::Change& change) {
  if (request.path == "/api/proposals") {
    if (request.method != "GET") return error(405, "GET only");
    return json(200, proposals_.pending());
  }
  if (request.method != "POST") return error(405, "POST only");
  std::string_view rest = std::string_view(request.path).substr(std::strlen("/api/proposals/"));
  auto slash = rest.find('/');
  auto id = positive(rest.substr(0, slash));
  auto decision = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  if (!id || (decision != "approve" && decision != "reject")) return error(404, "no such endpoint");
  return json(200, proposals_.decide(*id, decision == "approve", change));
}

ops::HttpResponse ConsoleApi::or_propose(const char* action, const std::string& request_json,
                                         const cases::Change& change, const std::function<ops::HttpResponse()>& make) {
  try {
    return make();
  } catch (const cases::NeedsSecondLead& e) {
    auto id = proposals_.propose(action, request_json, change);
    std::string body = "{\"proposal_id\":" + std::to_string(id) + ",\"waits_for\":";
    events::append_json_string(body, e.what());
    return json(202, body + "}");
  }
}

}  // namespace fraud::console
