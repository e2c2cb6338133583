// Sign-on through the bank's OpenID provider (console/sign_on.h), against a real one: the npm
// registry's certified oidc-provider, run by tests/browser/oidc_provider.mjs. Its access
// tokens sign analysts on with the name and role its claims carry; the four eyes hold between
// two leads it names; a token for another audience, altered, expired or with no console role
// is refused, and the log says why.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// oidc-provider on a port of its own, with the people of oidc_provider.mjs as its clients.
struct OpenIdProvider {
  OpenIdProvider()
      : port(free_port()),
        process({"/usr/bin/env", "node", FRAUD_SOURCE_DIR "/tests/browser/oidc_provider.mjs", std::to_string(port)}, {},
                "/tmp/" + unique_name("oidc") + ".log") {
    REQUIRE(wait_until(30s, [&] {
      int code = 0;
      return http_get(port, "/.well-known/openid-configuration", &code).has_value() && code == 200;
    }));
  }
  std::string issuer() const { return "http://127.0.0.1:" + std::to_string(port); }
  /// A fresh access token of the client-credentials grant for `person`, for `resource`.
  std::string token(const std::string& person, const std::string& resource = "urn:fraud-console") const {
    auto answer = output_of("curl -s -u " + person + ":" + person +
                            "-secret -d grant_type=client_credentials -d scope=console -d resource=" + resource + " " +
                            issuer() + "/token");
    auto token = json_field(answer, "access_token");
    REQUIRE_MESSAGE(std::count(token.begin(), token.end(), '.') == 2, "no JWT from the provider: " << answer);
    return token;
  }

  unsigned short port;
  ChildProcess process;
};

int status_with(const ConsoleProcess& console, const std::string& token) {
  int code = 0;
  http_call(console.port, {"GET", "/api/cases", "Bearer " + token}, &code);
  return code;
}

}  // namespace

TEST_CASE("analysts sign on with the bank's OpenID provider's tokens, which name them and their role") {
  AppliedHistory history;
  auto& db = history.db;
  OpenIdProvider provider;
  ConsoleProcess console(db, FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml",
                         {{"FRAUD_CONSOLE_OIDC_ISSUER", provider.issuer()},
                          {"FRAUD_CONSOLE_OIDC_AUDIENCE", "urn:fraud-console"},
                          {"FRAUD_CONSOLE_OIDC_LEEWAY_SECONDS", "0"},
                          {"FRAUD_CONSOLE_TOKENS_FILE", ""}});  // the provider's tokens only
  console.token_of = [&](const std::string& who) { return provider.token(who); };

  CHECK(console.status("GET", "/api/cases", "alice") == 200);
  CHECK(status_with(console, "alice-token") == 401);  // no tokens file in use
  REQUIRE(console.status("POST", "/api/lists/deny_cards/entries", "alice", R"({"value":"card-9","reason":"stolen"})") ==
          201);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'alice' AND action = 'list.add'") == 1);

  // Roles come from the token: a lead proposes, cannot approve their own, another lead does;
  // an analyst cannot approve at all.
  std::string proposed;
  REQUIRE(console.status("POST", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-2","reason":"vip"})",
                         &proposed) == 202);
  CHECK(console.approve(proposed, "lena") == 403);
  CHECK(console.approve(proposed, "alice") == 403);
  CHECK(console.approve(proposed, "lars") == 200);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE list_name = 'allow_accounts' AND ended_at IS NULL") ==
        1);

  // Refused, each for its reason.
  CHECK(status_with(console, provider.token("mallory")) == 401);  // a role the console does not know
  CHECK(status_with(console, provider.token("alice", "urn:payments")) == 401);
  // A lead's claims under an analyst's signature: well-formed, and forged.
  auto analyst = provider.token("alice"), lead = provider.token("lena");
  auto forged = lead.substr(0, lead.rfind('.')) + analyst.substr(analyst.rfind('.'));
  CHECK(status_with(console, forged) == 401);
  auto brief = provider.token("brief");  // expires after 5 s
  CHECK(status_with(console, brief) == 200);
  CHECK(wait_until(30s, [&] { return status_with(console, brief) == 401; }));
  auto log = read_file(console.log);
  for (const char* reason : {"gives no console role in claim 'roles'", "meant for another audience",
                             "its signature does not hold", "expired"}) {
    CAPTURE(std::string(reason));
    CHECK(log.find(std::string("\"reason\":\"") + reason + "\"") != std::string::npos);
  }
  CHECK(log.find(brief) == std::string::npos);  // never the token itself
}

TEST_CASE("the console does not start without its provider's keys, nor with a second way to sign on") {
  TestDatabase db(Services::from_environment());
  auto refusal = [&](const std::string& tokens_file) {
    auto log = "/tmp/" + unique_name("console") + ".log";
    ChildProcess console({FRAUD_CONSOLE_BINARY, "run"},
                         {{"FRAUD_CONSOLE_POSTGRES_URL", db.console_url()},
                          {"FRAUD_CONSOLE_OIDC_ISSUER", "http://127.0.0.1:" + std::to_string(free_port())},
                          {"FRAUD_CONSOLE_OIDC_AUDIENCE", "urn:fraud-console"},
                          {"FRAUD_CONSOLE_TOKENS_FILE", tokens_file},
                          {"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/config/rules.yaml"},
                          {"FRAUD_CONSOLE_LISTEN", "127.0.0.1:" + std::to_string(free_port())}},
                         log);
    REQUIRE(wait_until(30s, [&] { return !console.running(); }));
    CHECK(console.exit_status() == 1);
    return read_file(log);
  };
  CHECK(refusal("").find("/.well-known/openid-configuration") != std::string::npos);  // nobody answers there
  CHECK(refusal(FRAUD_SOURCE_DIR "/config/rules.yaml")
            .find("FRAUD_CONSOLE_OIDC_ISSUER and FRAUD_CONSOLE_TOKENS_FILE are both set") != std::string::npos);
}
