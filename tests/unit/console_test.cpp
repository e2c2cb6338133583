// The console's pure parts: the tokens file, and the API's routing and rights over a fake
// case store (tests/integration/console_test.cpp runs the real one).
#include <doctest/doctest.h>

#include "console/api.h"
#include "console/tokens.h"

using namespace fraud;

namespace {

const std::string kTokens = "# name role digest\nalice analyst " + console::sha256_hex("a-secret") + "\nlena lead " +
                            console::sha256_hex("l-secret") + "  # the team lead\n";

/// Records what the API asked of it. The database refuses what a role may not do, and as a
/// direct change what lowers decisions (migrations/0019, 0022); the fakes refuse an analyst's
/// assignment to another, and anything on an allow list, the end of deny entry 11 and any
/// suppression as needing a second lead, so that the API's answers to both are tested.
void refuse_analyst(const cases::Change& change, const char* what) {
  if (change.by.role != cases::Role::lead) throw cases::NotPermitted(std::string("only a lead may ") + what);
}

void needs_second_lead(const char* what) {
  throw cases::NeedsSecondLead(std::string(what) + " lowers decisions: it takes effect when a second lead approves it");
}

struct FakeCases : cases::Cases {
  std::string queue(const cases::QueueFilter& filter) override {
    last_filter = filter;
    return R"({"cases":[]})";
  }
  std::optional<std::string> find(std::int64_t case_id) override {
    if (case_id != 7) return std::nullopt;
    return R"({"case":{"case_id":7}})";
  }
  void assign(std::int64_t, const std::string& assignee, const cases::Change& change) override {
    if (assignee != change.by.name) refuse_analyst(change, "assign a case to someone else");
    assigned = assignee + " by " + change.by.name;
  }
  cases::ClosedCase close(std::int64_t case_id, int version, cases::Disposition, const cases::Change& change) override {
    if (case_id != 7) throw cases::CaseNotFound("case does not exist");
    if (closed) throw cases::CaseRefused("case 7 is closed already");
    if (version != 3) throw cases::CaseRefused("case 7 changed since it was shown");
    if (change.idempotency_key == "used")
      throw cases::KeyReused("the Idempotency-Key used was used for another request");
    closed = true;
    return {7, 3};
  }
  std::string rule_performance(int days) override { return "{\"days\":" + std::to_string(days) + "}"; }
  std::int64_t comment(std::int64_t case_id, const std::string& body, const cases::Change& change) override {
    if (case_id != 7) throw cases::CaseNotFound("case does not exist");
    commented = body + " by " + change.by.name + " under " + change.idempotency_key;
    return 21;
  }
  std::string links(std::int64_t case_id, const cases::LinkQuery& query) override {
    if (case_id != 7) throw cases::CaseNotFound("case does not exist");
    if (query.days == 90) throw cases::DeskBusy("the links took longer than their budget of 2 s");
    last_links = query;
    return R"({"links":[]})";
  }
  cases::QueueFilter last_filter;
  cases::LinkQuery last_links;
  std::string assigned, commented;
  bool closed = false;
};

struct FakeLists : cases::Lists {
  std::string in_force() override { return R"({"entries":[]})"; }
  std::int64_t add(const cases::NewListEntry& entry, const cases::Change& change) override {
    if (entry.list.rfind("allow_", 0) == 0) needs_second_lead("adding to an allow list");
    added = entry.list + "/" + entry.value + "/" + entry.reason + "/" + std::to_string(entry.days.value_or(0)) +
            " by " + change.by.name;
    return 11;
  }
  void end(std::int64_t entry_id, const cases::Change&) override {
    if (entry_id != 11) throw cases::CaseNotFound("no list entry is in force");
    needs_second_lead("ending an entry of deny_cards");
  }
  std::int64_t suppress(const cases::NewSuppression&, const cases::Change&) override {
    needs_second_lead("suppressing a rule");
    return 0;
  }
  void end_suppression(std::int64_t id, const cases::Change&) override {
    if (id != 31) throw cases::CaseNotFound("no suppression is in force");
  }
  std::string added;
};

struct FakeProposals : cases::Proposals {
  std::string pending() override { return R"({"proposals":[]})"; }
  std::int64_t propose(const std::string& action, const std::string& request, const cases::Change& change) override {
    proposed = action + " " + request + " by " + change.by.name;
    proposer = change.by.name;
    return 41;
  }
  std::string decide(std::int64_t id, bool approve, const cases::Change& change) override {
    if (id != 41) throw cases::CaseNotFound("proposal does not exist");
    refuse_analyst(change, "approve or reject a proposal");
    if (approve && change.by.name == proposer)
      throw cases::NotPermitted("a second lead approves a proposal, not the one who proposed it");
    return std::string(R"({"proposal_id":41,"state":")") + (approve ? "approved" : "rejected") + "\"}";
  }
  std::string proposed, proposer;
};

console::RuleCatalog catalog() { return {{"large_amount", "velocity_10m"}, {"deny_cards", "allow_cards"}}; }

ops::HttpRequest request(std::string method, std::string target, std::string token, std::string body = "") {
  ops::HttpRequest r;
  r.method = std::move(method);
  auto question = target.find('?');
  r.path = target.substr(0, question);
  if (question != std::string::npos) r.query = target.substr(question + 1);
  if (!token.empty()) r.authorization = "Bearer " + token;
  static int keys = 0;
  if (r.method == "POST") r.idempotency_key = "key-" + std::to_string(++keys);  // as the page sends one
  r.body = std::move(body);
  return r;
}

/// The API over the fakes, with kTokens' analysts.
struct ConsoleWithFakes {
  console::TokenBook book = console::TokenBook::parse(kTokens, "tokens");
  FakeCases cases;
  FakeLists lists;
  FakeProposals proposals;
  console::ConsoleApi api{book, cases, lists, proposals, catalog};
};

}  // namespace

TEST_CASE("the tokens file names each analyst's role and keeps only digests") {
  auto book = console::TokenBook::parse(kTokens, "tokens");
  CHECK(book.size() == 2);
  auto alice = book.authenticate("Bearer a-secret");
  REQUIRE(alice);
  CHECK(alice->name == "alice");
  CHECK(alice->role == console::Role::analyst);
  CHECK(book.authenticate("Bearer l-secret")->role == console::Role::lead);
  CHECK_FALSE(book.authenticate("Bearer wrong"));
  CHECK_FALSE(book.authenticate("a-secret"));  // no scheme
  CHECK_FALSE(book.authenticate("Basic a-secret"));
  CHECK_FALSE(book.authenticate("Bearer "));
  CHECK(console::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("a token with an expiry works until the start of its UTC day, and never after") {
  auto book = console::TokenBook::parse("alice analyst " + console::sha256_hex("a-secret") +
                                            " expires=2027-03-01\nlena lead " + console::sha256_hex("l-secret") + "\n",
                                        "tokens");
  auto at = [](const char* when) { return *fraud::events::parse_rfc3339(when); };
  CHECK(book.authenticate("Bearer a-secret", at("2027-02-28T23:59:59Z")));
  CHECK_FALSE(book.authenticate("Bearer a-secret", at("2027-03-01T00:00:00Z")));
  CHECK_FALSE(book.authenticate("Bearer a-secret", at("2031-01-01T00:00:00Z")));
  CHECK(book.authenticate("Bearer l-secret", at("2031-01-01T00:00:00Z")));  // no expiry
}

TEST_CASE("a bad tokens file is refused with its file and line") {
  auto refusal = [](const std::string& text) {
    try {
      console::TokenBook::parse(text, "tokens.txt");
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(refusal("alice analyst") ==
        "tokens.txt:1: expected three fields: name, role (analyst or lead), sha256 of "
        "the token; and expires=YYYY-MM-DD or none");
  CHECK(refusal("alice analyst " + std::string(64, 'a') + " expires=2027-13-01") ==
        "tokens.txt:1: the fourth field is expires=YYYY-MM-DD, the UTC day the token stops working");
  CHECK(refusal("alice analyst " + std::string(64, 'a') + " until=2027-01-01").find("the fourth field") !=
        std::string::npos);
  CHECK(refusal("\nalice admin " + std::string(64, 'a')) == "tokens.txt:2: role 'admin' is neither analyst nor lead");
  CHECK(refusal("alice analyst a-secret").find("tokens.txt:1: the third field is not a SHA-256 digest") == 0);
  CHECK(refusal("alice analyst " + std::string(64, 'a') + "\nalice lead " + std::string(64, 'b')) ==
        "tokens.txt:2: 'alice' appears twice");
}

TEST_CASE_FIXTURE(ConsoleWithFakes, "the console's API answers by token and role") {
  auto refused = api.handle(request("GET", "/api/cases", ""));
  CHECK(refused.status == 401);
  CHECK(api.handle(request("GET", "/api/cases/7", "guess")).status == 401);
  CHECK(api.handle(request("GET", "/api/me", "l-secret")).body == R"({"name":"lena","role":"lead"})");

  CHECK(api.handle(request("GET", "/api/cases?state=open&rule=large%5Famount&decision=block", "a-secret")).status ==
        200);
  CHECK(cases.last_filter.state == "open");
  CHECK(cases.last_filter.rule == "large_amount");
  CHECK(cases.last_filter.decision == "block");
  CHECK(cases.last_filter.min_age_hours == 0);
  CHECK(api.handle(request("GET", "/api/cases?min_age_hours=24", "a-secret")).status == 200);
  CHECK(cases.last_filter.min_age_hours == 24);
  CHECK(api.handle(request("GET", "/api/cases?min_age_hours=0", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/cases?limit=0", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/cases?limit=5000", "a-secret")).status == 400);

  CHECK(api.handle(request("GET", "/api/cases/7", "a-secret")).status == 200);
  CHECK(api.handle(request("GET", "/api/cases/8", "a-secret")).status == 404);
  CHECK(api.handle(request("GET", "/api/cases/-1", "a-secret")).status == 404);
  CHECK(api.handle(request("GET", "/api/cases/7/close", "a-secret")).status == 405);
  CHECK(api.handle(request("POST", "/api/cases/7/reopen", "a-secret", "{}")).status == 404);

  auto commented = api.handle(request("POST", "/api/cases/7/comment", "a-secret", R"({"body":"called the customer"})"));
  CHECK(commented.status == 201);
  CHECK(commented.body == R"({"comment_id":21})");
  CHECK(cases.commented.starts_with("called the customer by alice under key-"));
  CHECK(api.handle(request("POST", "/api/cases/7/comment", "a-secret", R"({"body":""})")).status == 400);
  CHECK(api.handle(request("POST", "/api/cases/8/comment", "a-secret", R"({"body":"x"})")).status == 404);

  CHECK(api.handle(request("POST", "/api/cases/7/assign", "a-secret", R"({"assignee":"bob"})")).status == 403);
  CHECK(api.handle(request("POST", "/api/cases/7/assign", "a-secret", R"({"assignee":"alice"})")).status == 200);
  CHECK(api.handle(request("POST", "/api/cases/7/assign", "l-secret", R"({"assignee":"bob"})")).status == 200);
  CHECK(cases.assigned == "bob by lena");

  CHECK(api.handle(request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":1,"version":3})")).status ==
        400);
  // A close names the version of the case it was shown.
  CHECK(api.handle(request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":"fraud"})")).status == 400);
  CHECK(api.handle(request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":"fraud","version":"3"})"))
            .status == 400);
  CHECK(
      api.handle(request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":"fraud","version":2})")).status ==
      409);
  CHECK(
      api.handle(request("POST", "/api/cases/8/close", "a-secret", R"({"disposition":"fraud","version":3})")).status ==
      404);
  auto reused = request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":"fraud","version":3})");
  reused.idempotency_key = "used";
  CHECK(api.handle(reused).status == 422);
  auto closed = api.handle(request("POST", "/api/cases/7/close", "a-secret", R"({"disposition":"fraud","version":3})"));
  CHECK(closed.status == 200);
  CHECK(closed.body == R"({"case_id":7,"labelled":3})");
  auto again =
      api.handle(request("POST", "/api/cases/7/close", "l-secret", R"({"disposition":"legitimate","version":3})"));
  CHECK(again.status == 409);
  CHECK(again.body == R"({"error":"case 7 is closed already"})");

  // Every POST carries an Idempotency-Key, or does nothing.
  auto keyless = request("POST", "/api/cases/7/comment", "a-secret", R"({"body":"x"})");
  keyless.idempotency_key.clear();
  CHECK(api.handle(keyless).status == 400);
  CHECK(cases.commented.starts_with("called the customer"));

  // The page is public and static; every answer forbids framing and sniffing.
  auto page = api.handle(request("GET", "/", ""));
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(api.handle(request("GET", "/openapi.yaml", "")).body.find("openapi: 3.0.3") == 0);
  CHECK(api.handle(request("POST", "/", "")).status == 405);
  bool framing_refused = false;
  for (const auto& [name, value] : page.headers)
    framing_refused |= name == "Content-Security-Policy" && value.find("frame-ancestors 'none'") != std::string::npos;
  CHECK(framing_refused);
}

TEST_CASE_FIXTURE(
    ConsoleWithFakes,
    "the console's lists API adds and ends entries and proposes what lowers decisions for a second lead") {
  CHECK(api.handle(request("GET", "/api/lists", "")).status == 401);
  CHECK(api.handle(request("GET", "/api/lists", "a-secret")).body == R"({"entries":[]})");
  auto added = api.handle(
      request("POST", "/api/lists/deny_cards/entries", "a-secret", R"({"value":"fp-1","reason":"stolen","days":14})"));
  CHECK(added.status == 201);
  CHECK(added.body == R"({"entry_id":11})");
  CHECK(lists.added == "deny_cards/fp-1/stolen/14 by alice");
  CHECK(api.handle(request("POST", "/api/lists/deny_cards/entries", "a-secret",
                           R"({"value":"fp-1","reason":"x","days":"14"})"))
            .status == 400);
  CHECK(api.handle(request("POST", "/api/lists/deny_cards/entries", "a-secret",
                           R"({"value":"fp-1","reason":"x","days":0})"))
            .status == 400);
  // What lowers decisions is proposed, whoever asks, and waits for a second lead.
  auto allow =
      api.handle(request("POST", "/api/lists/allow_cards/entries", "l-secret", R"({"value":"fp-2","reason":"vip"})"));
  CHECK(allow.status == 202);
  CHECK(
      allow.body ==
      R"({"proposal_id":41,"waits_for":"adding to an allow list lowers decisions: it takes effect when a second lead approves it"})");
  CHECK(proposals.proposed == R"(list.add {"list":"allow_cards","value":"fp-2","reason":"vip","days":null} by lena)");
  CHECK(lists.added == "deny_cards/fp-1/stolen/14 by alice");  // nothing added to the allow list
  CHECK(api.handle(request("POST", "/api/lists/entries/11/end", "a-secret")).status == 202);
  CHECK(proposals.proposed == R"(list.end {"entry":11} by alice)");
  CHECK(api.handle(request("POST", "/api/lists/entries/12/end", "a-secret")).status == 404);
  CHECK(api.handle(request("POST", "/api/lists/entries/x/end", "a-secret")).status == 404);
  CHECK(api.handle(request("GET", "/api/currencies", "a-secret")).body.find("\"JPY\":0") != std::string::npos);
  CHECK(api.handle(request("GET", "/api/rules", "a-secret")).body == R"({"days":30})");
  CHECK(api.handle(request("GET", "/api/rules?days=7", "a-secret")).body == R"({"days":7})");
  CHECK(api.handle(request("GET", "/api/rules?days=0", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/rules", "")).status == 401);

  // A list no rule reads is refused with those that exist.
  auto unread =
      api.handle(request("POST", "/api/lists/deny_card/entries", "a-secret", R"({"value":"x","reason":"y"})"));
  CHECK(unread.status == 400);
  CHECK(unread.body ==
        R"({"error":"the rules file declares no runtime list 'deny_card'; it declares: deny_cards allow_cards"})");
  CHECK(api.handle(request("GET", "/api/catalog", "a-secret")).body ==
        R"({"rules":["large_amount","velocity_10m"],"lists":["deny_cards","allow_cards"]})");
  CHECK(api.handle(request("POST", "/api/catalog", "a-secret")).status == 405);
  // A list named "entries" is a list (here one the file does not declare), not an entry to end.
  CHECK(api.handle(request("POST", "/api/lists/entries/entries", "a-secret", R"({"value":"x","reason":"y"})"))
            .body.find("declares no runtime list 'entries'") != std::string::npos);
  CHECK(api.handle(request("POST", "/api/lists/allow_cards/entries", "a-secret", "not json")).status == 400);

  // A second lead decides; the proposer may not approve their own, an analyst decides nothing.
  CHECK(api.handle(request("GET", "/api/proposals", "a-secret")).body == R"({"proposals":[]})");
  CHECK(api.handle(request("POST", "/api/proposals/41/approve", "a-secret")).status == 403);
  proposals.proposer = "lena";
  auto own = api.handle(request("POST", "/api/proposals/41/approve", "l-secret"));
  CHECK(own.status == 403);
  CHECK(own.body == R"({"error":"a second lead approves a proposal, not the one who proposed it"})");
  CHECK(api.handle(request("POST", "/api/proposals/41/reject", "l-secret")).body ==
        R"({"proposal_id":41,"state":"rejected"})");
  CHECK(api.handle(request("POST", "/api/proposals/42/approve", "l-secret")).status == 404);
  CHECK(api.handle(request("POST", "/api/proposals/41/maybe", "l-secret")).status == 404);
  CHECK(api.handle(request("GET", "/api/proposals/41/approve", "l-secret")).status == 405);
}

TEST_CASE_FIXTURE(ConsoleWithFakes,
                  "a suppression is proposed for a second lead and only of a rule the rules file declares") {
  const std::string payroll = R"({"rule":"large_amount","account_id":"acc-1","reason":"monthly payroll")";
  CHECK(api.handle(request("POST", "/api/suppressions", "", payroll + "}")).status == 401);
  auto proposed = api.handle(request("POST", "/api/suppressions", "l-secret", payroll + "}"));
  CHECK(proposed.status == 202);
  CHECK(proposed.body.starts_with(R"({"proposal_id":41,"waits_for":"suppressing a rule lowers decisions)"));
  CHECK(proposals.proposed ==  // 14 days unless said
        R"(suppression.add {"rule":"large_amount","account":"acc-1","reason":"monthly payroll","days":14} by lena)");
  CHECK(api.handle(request("POST", "/api/suppressions", "a-secret", payroll + R"(,"days":30})")).status == 202);
  CHECK(proposals.proposed.ends_with(R"("days":30} by alice)"));
  CHECK(api.handle(request("POST", "/api/suppressions", "l-secret", payroll + R"(,"days":366})")).status == 400);
  CHECK(api.handle(request("POST", "/api/suppressions", "l-secret", R"({"rule":"large_amount","account_id":"a"})"))
            .status == 400);
  auto unknown = api.handle(request("POST", "/api/suppressions", "l-secret",
                                    R"({"rule":"large_amont","account_id":"acc-1","reason":"typo"})"));
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("declares no rule 'large_amont'") != std::string::npos);
  CHECK(api.handle(request("GET", "/api/suppressions", "l-secret")).status == 405);
  CHECK(api.handle(request("POST", "/api/suppressionsX", "l-secret", payroll + "}")).status == 404);
  CHECK(api.handle(request("POST", "/api/suppressions/31/end/x", "a-secret")).status == 404);
  CHECK(api.handle(request("POST", "/api/suppressions", "a-secret", "not json")).status == 400);
  CHECK(api.handle(request("POST", "/api/suppressions", "l-secret",
                           R"({"rule":"missing_rate","account_id":"acc-1","reason":"r"})"))
            .status == 400);  // the built-in rule is not the file's to suppress
  CHECK(api.handle(request("POST", "/api/suppressions", "l-secret",
                           R"({"rule":"large_amount","account_id":"acc-1 ","reason":"r"})"))
            .status == 400);
  CHECK(api.handle(request("POST", "/api/suppressions/31/end", "a-secret")).status == 200);
  CHECK(api.handle(request("POST", "/api/suppressions/32/end", "a-secret")).status == 404);
  CHECK(api.handle(request("POST", "/api/suppressions/x/end", "a-secret")).status == 404);
}

TEST_CASE("a bearer token's scheme is case-insensitive and two analysts never share a token") {
  auto book = console::TokenBook::parse(kTokens, "tokens");
  CHECK(book.authenticate("bearer a-secret"));
  CHECK(book.authenticate("BEARER a-secret"));
  CHECK_THROWS_WITH_AS(console::TokenBook::parse(
                           "a analyst " + console::sha256_hex("t") + "\nb lead " + console::sha256_hex("t"), "tokens"),
                       "tokens:2: 'b' has the token of 'a'", std::runtime_error);
}

TEST_CASE("each analyst's requests are limited to a burst and then a rate, apart from the others'") {
  console::RateLimits limits(10, 3);
  auto start = console::RateLimits::Clock::now();
  for (int i = 0; i < 3; ++i) CHECK(limits.allow("alice", start));
  CHECK_FALSE(limits.allow("alice", start));
  CHECK(limits.allow("bob", start));  // a bucket each
  CHECK_FALSE(limits.allow("alice", start + std::chrono::milliseconds(50)));
  CHECK(limits.allow("alice", start + std::chrono::milliseconds(100)));  // one more after a tenth of a second
  CHECK_FALSE(limits.allow("alice", start + std::chrono::milliseconds(100)));
  CHECK(limits.allow("alice", start + std::chrono::seconds(60)));  // refilled, but only to the burst
  CHECK(limits.allow("alice", start + std::chrono::seconds(60)));
  CHECK(limits.allow("alice", start + std::chrono::seconds(60)));
  CHECK_FALSE(limits.allow("alice", start + std::chrono::seconds(60)));
}

TEST_CASE_FIXTURE(ConsoleWithFakes, "the links of a case are read by any analyst, within bounds the API checks") {
  CHECK(api.handle(request("GET", "/api/cases/7/links", "")).status == 401);
  CHECK(api.handle(request("GET", "/api/cases/7/links", "a-secret")).status == 200);
  CHECK(cases.last_links.days == 30);
  CHECK(cases.last_links.accounts == 50);
  CHECK(api.handle(request("GET", "/api/cases/7/links?days=7&accounts=10", "a-secret")).status == 200);
  CHECK(cases.last_links.days == 7);
  CHECK(cases.last_links.accounts == 10);
  CHECK(api.handle(request("GET", "/api/cases/7/links?days=91", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/cases/7/links?days=0", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/cases/7/links?accounts=201", "a-secret")).status == 400);
  CHECK(api.handle(request("GET", "/api/cases/8/links", "a-secret")).status == 404);
  CHECK(api.handle(request("POST", "/api/cases/7/links", "a-secret", "{}")).status == 405);
  // Past its time budget the answer is a 503 the page can say, with when to try again.
  auto busy = api.handle(request("GET", "/api/cases/7/links?days=90", "a-secret"));
  CHECK(busy.status == 503);
  CHECK(busy.body.find("budget") != std::string::npos);
}
