// fraud-console: the analysts' console, a web page and a JSON API over the service's database.
//
//   fraud-console run                  serves until SIGTERM or SIGINT
//   fraud-console token NAME ROLE [--days N]
//                                      makes a token: prints it once, and its tokens-file line
//                                      (which, with --days, expires after at least N days)
//   fraud-console audit verify [--head SEQ:HASH]
//                                      checks the audit's hash chain (and that a head printed
//                                      earlier is still in it); exit status 1 when it is broken
//
// Settings come from the environment, never the command line (where passwords show in `ps`),
// each also as NAME_FILE=/path, the file holding the value (a secret's way on Kubernetes):
// FRAUD_CONSOLE_POSTGRES_URL (a login role in fraud_console, for analysts' requests),
// FRAUD_CONSOLE_LEAD_POSTGRES_URL (one in fraud_console_lead, for leads'), FRAUD_RULES_FILE (the
// replicas' rules file: which rules and lists exist) and FRAUD_CONSOLE_LISTEN (default
// 127.0.0.1:8090); who signs on: the bank's OpenID provider's tokens (FRAUD_CONSOLE_OIDC_ISSUER,
// FRAUD_CONSOLE_OIDC_AUDIENCE and the optional FRAUD_CONSOLE_OIDC_* of OidcSettings), a tokens
// file (FRAUD_CONSOLE_TOKENS_FILE), one or the other. Exit status: 0 done, 1 failed, 2 usage.

#include <openssl/rand.h>

#include <algorithm>
#include <boost/algorithm/hex.hpp>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cases/audit_chain.h"
#include "cases/case_desk.h"
#include "cases/list_desk.h"
#include "console/api.h"
#include "console/sign_on.h"
#include "console/tokens.h"
#include "events/time.h"
#include "ops/cli.h"
#include "ops/environment.h"
#include "ops/file_stamp.h"
#include "ops/http_server.h"
#include "ops/log.h"
#include "ops/stop_signal.h"
#include "rules/rule_set.h"

namespace {

using namespace fraud;

constexpr std::int64_t kMicrosPerDay = 86'400'000'000;

constexpr const char* kUsage =
    "usage: fraud-console run\n"
    "       fraud-console token NAME analyst|lead [--days N]\n"
    "       fraud-console audit verify [--head SEQ:HASH]\n"
    "FRAUD_CONSOLE_POSTGRES_URL, FRAUD_CONSOLE_LEAD_POSTGRES_URL, FRAUD_RULES_FILE, FRAUD_CONSOLE_LISTEN, and\n"
    "FRAUD_CONSOLE_OIDC_ISSUER with FRAUD_CONSOLE_OIDC_AUDIENCE or FRAUD_CONSOLE_TOKENS_FILE, configure run.\n";

/// A setting from the environment, or from the file its `_FILE` variable names (a secret).
std::string setting(const char* name, const char* fallback = nullptr) {
  if (auto value = ops::environment_setting(name)) return *value;
  if (fallback) return fallback;
  throw std::runtime_error(std::string(name) + " is not set");
}

int make_token(const std::string& name, const std::string& role, const std::optional<std::string>& days) {
  if (name.empty() || name.find_first_of(" \t#") != std::string::npos)
    return ops::refuse("fraud-console token: NAME must be one word\n");
  if (role != "analyst" && role != "lead") return ops::refuse("fraud-console token: ROLE is analyst or lead\n");
  std::string expires;
  if (days) {
    int n = 0;
    auto [end, failed] = std::from_chars(days->data(), days->data() + days->size(), n);
    if (failed != std::errc() || end != days->data() + days->size() || n < 1 || n > 3650)
      return ops::refuse("fraud-console token: --days is a whole number of days from 1 to 3650\n");
    auto today = events::wall_clock_now() / kMicrosPerDay * kMicrosPerDay;
    expires = " expires=" + events::format_rfc3339(today + (n + 1) * kMicrosPerDay).substr(0, 10);  // through day N
  }
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return ops::refuse("fraud-console token: no randomness\n", 1);
  std::string token;
  boost::algorithm::hex_lower(bytes, bytes + sizeof bytes, std::back_inserter(token));
  std::cout << "token (give it to " << name << "; it is not kept): " << token << "\n"
            << "tokens-file line: " << name << " " << role << " " << console::sha256_hex(token) << expires << "\n";
  return 0;
}

/// The rules and lists the rules file declares, read again when the file changed
/// (ops::FileStamp), so that a rule or list the replicas gained is known without a restart. A file
/// that stops loading keeps what last did (as the replicas' reload does), said once in the log.
class RuleCatalogFile {
 public:
  explicit RuleCatalogFile(std::string path)
      : path_(std::move(path)), stamp_(ops::FileStamp::of(path_)), last_(read()) {}

  console::RuleCatalog operator()() {
    std::lock_guard lock(*mutex_);  // requests run on several threads
    auto now = ops::FileStamp::of(path_);
    if (now == stamp_) return last_;
    stamp_ = now;
    try {
      last_ = read();
    } catch (const std::exception& e) {
      ops::log::warn("the rules file does not load; the console keeps what it last read",
                     {{"file", path_}, {"error", e.what()}});
    }
    return last_;
  }

 private:
  console::RuleCatalog read() const {
    auto set = rules::RuleSet::load(path_);
    console::RuleCatalog catalog;
    for (const auto& rule : set.rules()) catalog.rules.push_back(rule.id);
    catalog.lists = set.schema().runtime_lists;
    return catalog;
  }
  std::string path_;
  std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();  // shared: a std::function copies this
  ops::FileStamp stamp_;
  console::RuleCatalog last_;
};

/// The bank's OpenID provider `issuer` (FRAUD_CONSOLE_OIDC_ISSUER), when one is named.
std::unique_ptr<console::OidcSignOn> oidc_sign_on(const std::string& issuer) {
  if (issuer.empty()) return nullptr;
  console::OidcSettings settings;
  settings.issuer = issuer;
  settings.audience = setting("FRAUD_CONSOLE_OIDC_AUDIENCE");
  settings.jwks_url = setting("FRAUD_CONSOLE_OIDC_JWKS_URL", "");
  settings.name_claim = setting("FRAUD_CONSOLE_OIDC_NAME_CLAIM", settings.name_claim.c_str());
  settings.role_claim = setting("FRAUD_CONSOLE_OIDC_ROLE_CLAIM", settings.role_claim.c_str());
  settings.analyst_value = setting("FRAUD_CONSOLE_OIDC_ANALYST_VALUE", settings.analyst_value.c_str());
  settings.lead_value = setting("FRAUD_CONSOLE_OIDC_LEAD_VALUE", settings.lead_value.c_str());
  auto leeway = setting("FRAUD_CONSOLE_OIDC_LEEWAY_SECONDS", "60");
  int seconds = -1;
  auto [end, failed] = std::from_chars(leeway.data(), leeway.data() + leeway.size(), seconds);
  if (failed != std::errc() || end != leeway.data() + leeway.size() || seconds < 0 || seconds > 300)
    throw std::runtime_error("FRAUD_CONSOLE_OIDC_LEEWAY_SECONDS is a whole number of seconds from 0 to 300");
  settings.leeway = std::chrono::seconds(seconds);
  return std::make_unique<console::OidcSignOn>(settings, console::fetch_over_https);
}

/// Who a request's Authorization header names: the provider's tokens or the tokens file's,
/// never both (one person could then appear under two names, or two people under one).
console::Authenticate sign_on(const std::unique_ptr<console::OidcSignOn>& oidc,
                              const std::unique_ptr<console::TokenFile>& tokens) {
  return [&oidc, &tokens](std::string_view authorization) -> std::optional<cases::Analyst> {
    return oidc ? oidc->authenticate(authorization) : tokens->authenticate(authorization);
  };
}

int run() {
  auto issuer = setting("FRAUD_CONSOLE_OIDC_ISSUER", "");
  auto tokens_file = setting("FRAUD_CONSOLE_TOKENS_FILE", issuer.empty() ? nullptr : "");
  if (!issuer.empty() && !tokens_file.empty())
    throw std::runtime_error(
        "FRAUD_CONSOLE_OIDC_ISSUER and FRAUD_CONSOLE_TOKENS_FILE are both set: analysts sign on one way, so each "
        "has one name in the audit");
  auto oidc = oidc_sign_on(issuer);
  auto tokens = oidc ? nullptr : std::make_unique<console::TokenFile>(tokens_file);
  cases::DeskLogins logins{setting("FRAUD_CONSOLE_POSTGRES_URL"), setting("FRAUD_CONSOLE_LEAD_POSTGRES_URL", "")};
  cases::check_logins(logins);
  if (logins.lead_url.empty())
    ops::log::warn(
        "FRAUD_CONSOLE_LEAD_POSTGRES_URL is not set: leads act with the analysts' login, and the database "
        "refuses what only a lead may do");
  cases::CaseDesk desk(logins);
  cases::ListDesk lists(logins);
  cases::ProposalDesk proposals(logins);
  console::ConsoleApi api(sign_on(oidc, tokens), desk, lists, proposals, RuleCatalogFile(setting("FRAUD_RULES_FILE")));
  const auto& stop = ops::stop_on_signals();
  // Requests wait on the database: four at once, so that one slow request holds up no other.
  ops::HttpServer server(
      setting("FRAUD_CONSOLE_LISTEN", "127.0.0.1:8090"),
      [&api](const ops::HttpRequest& request) { return api.handle(request); }, 4);
  ops::log::info("console started", {{"port", std::to_string(server.port())},
                                     {"analysts", std::to_string(tokens ? tokens->size() : 0)},
                                     {"sign_on_keys", std::to_string(oidc ? oidc->key_count() : 0)}});
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ops::log::info("console stopped");
  return 0;
}

/// Checks the audit's hash chain through FRAUD_CONSOLE_POSTGRES_URL; prints its head.
int verify_audit(const std::optional<std::string>& head) {
  std::optional<cases::ChainLink> known;
  if (head && !(known = cases::parse_link(*head)))
    return ops::refuse("fraud-console audit verify: --head is SEQ:HASH, as an earlier run printed it\n");
  auto verdict = cases::verify_audit_chain(setting("FRAUD_CONSOLE_POSTGRES_URL"), known);
  if (!verdict.intact) {
    std::cout << "audit chain broken: " << verdict.problem << "\n";
    return 1;
  }
  std::cout << "audit chain intact: " << verdict.rows << " rows; head " << verdict.head.seq << ":" << verdict.head.hash
            << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = argc > 1 ? argv[1] : "";
  try {
    if (command == "run" && argc == 2) return run();
    if (command == "token" && argc == 4) return make_token(argv[2], argv[3], std::nullopt);
    if (command == "token" && argc == 6 && std::string(argv[4]) == "--days")
      return make_token(argv[2], argv[3], std::string(argv[5]));
    if (command == "audit" && argc >= 3 && std::string(argv[2]) == "verify") {
      if (argc == 3) return verify_audit(std::nullopt);
      if (argc == 5 && std::string(argv[3]) == "--head") return verify_audit(std::string(argv[4]));
    }
  } catch (const std::exception& e) {
    return ops::refuse(std::string("fraud-console: ") + e.what() + "\n", 1);
  }
  return ops::refuse(kUsage);
}
