#pragma once
// The console's JSON API and its page (console/openapi.yaml describes the API). Every /api
// request carries a bearer token (console/tokens.h), and every POST an Idempotency-Key; every
// change goes through cases::Cases or cases::Lists, whose database functions check the role,
// audit it and answer a retry with the first answer. The page at / is static and uses the
// same API.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cases/case_desk.h"
#include "cases/list_desk.h"
#include "cases/proposal_desk.h"
#include "console/rate_limit.h"
#include "console/tokens.h"
#include "ops/http_server.h"

namespace fraud::console {

/// What the replicas' rules file declares: the rules an analyst may suppress and the runtime
/// lists an analyst may add to. Anything else is refused: an entry on a list no rule reads
/// would be accepted and do nothing.
struct RuleCatalog {
  std::vector<std::string> rules, lists;
};

/// Who an Authorization header names, if anyone (TokenBook, TokenFile).
using Authenticate = std::function<std::optional<Analyst>(std::string_view authorization)>;

class ConsoleApi {
 public:
  /// `catalog` is asked on every request that needs it, so it may follow the rules file;
  /// `authenticate` too, so it may follow the tokens file.
  ConsoleApi(Authenticate authenticate, cases::Cases& cases, cases::Lists& lists, cases::Proposals& proposals,
             std::function<RuleCatalog()> catalog)
      : authenticate_(std::move(authenticate)), cases_(cases), lists_(lists), proposals_(proposals),
        catalog_(std::move(catalog)) {}
  /// With the tokens of a book that does not change.
  ConsoleApi(const TokenBook& tokens, cases::Cases& cases, cases::Lists& lists, cases::Proposals& proposals,
             std::function<RuleCatalog()> catalog)
      : ConsoleApi([&tokens](std::string_view authorization) { return tokens.authenticate(authorization); }, cases,
                   lists, proposals, std::move(catalog)) {}

  /// Answers one request; never throws (a database failure is a 500 whose detail is logged).
  /// Safe to call from several threads at once. Logs each refusal (401, 403, 429) and each
  /// case read with who asked.
  ops::HttpResponse handle(const ops::HttpRequest& request);

 private:
  ops::HttpResponse api(const ops::HttpRequest& request, const Analyst& analyst);
  /// GET /api/cases/{id}/links: who else used what the case's account used.
  ops::HttpResponse case_links(const ops::HttpRequest& request, std::int64_t case_id);
  ops::HttpResponse case_action(const ops::HttpRequest& request, const cases::Change& change, std::int64_t case_id,
                                const std::string& action);
  ops::HttpResponse list_action(const ops::HttpRequest& request, const cases::Change& change);
  ops::HttpResponse suppression_action(const ops::HttpRequest& request, const cases::Change& change);
  ops::HttpResponse proposal_action(const ops::HttpRequest& request, const cases::Change& change);
  /// What `make` answers; or, when the database refuses the change as one that lowers
  /// decisions, 202 with the proposal of `action` and `request_json` it makes instead.
  ops::HttpResponse or_propose(const char* action, const std::string& request_json, const cases::Change& change,
                               const std::function<ops::HttpResponse()>& make);

  Authenticate authenticate_;
  cases::Cases& cases_;
  cases::Lists& lists_;
  cases::Proposals& proposals_;
  std::function<RuleCatalog()> catalog_;
  RateLimits limits_{10, 40};  ///< per analyst: 10 requests a second, bursts of 40
};

/// The static files the console serves: the page, its script and style, the OpenAPI file.
struct WebFile {
  const char* path;
  const char* content_type;
  const char* body;
};
extern const WebFile kWebFiles[];
extern const std::size_t kWebFileCount;

}  // namespace fraud::console
