// fraud-console's API on the real database, as a child process: who may do what, and what
// each action leaves behind (labels, the audit). What needs two people: four_eyes_test.cpp.
// The browser test drives the page itself.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <future>

#include <simdjson.h>

#include "console/tokens.h"
#include "store/key_indexes.h"
#include "store/list_entries.h"
#include "tests/support/integration.h"

using namespace fraud;
using namespace fraud::testing;
using namespace std::chrono_literals;

TEST_CASE("the console's API refuses the unauthenticated and the unauthorised, and audits what it allows") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")},
                 {1, transaction_event(1, "15000.00", "2026-11-27T09:01:00Z", "acc-a")},
                 {2, transaction_event(2, "50.00", "2026-11-27T09:02:00Z", "acc-a")}});
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases WHERE account_id = 'acc-a'"));
  ConsoleProcess console(db);

  // Nobody without a valid token reads anything.
  CHECK(console.status("GET", "/api/cases", "") == 401);
  CHECK(console.status("GET", "/api/cases", "mallory") == 401);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "mallory", R"({"disposition":"legitimate"})") == 401);
  CHECK(console.status("GET", "/", "") == 200);  // the page itself is public; it holds no data

  std::string answer;
  CHECK(console.status("GET", "/api/cases?state=open", "alice", "", &answer) == 200);
  CHECK(answer.find("\"account_id\":\"acc-a\"") != std::string::npos);
  CHECK(answer.find("\"rules\":[\"large_amount\"]") != std::string::npos);
  CHECK(console.status("GET", "/api/cases?state=open&min_age_hours=1", "alice", "", &answer) == 200);
  CHECK(answer.find("acc-a") == std::string::npos);  // opened moments ago: not waiting an hour yet
  db.query("UPDATE fraud_cases SET opened_at = now() - interval '2 hours'");
  CHECK(console.status("GET", "/api/cases?state=open&min_age_hours=1", "alice", "", &answer) == 200);
  CHECK(answer.find("acc-a") != std::string::npos);
  CHECK(console.status("GET", "/api/cases/" + id, "alice", "", &answer) == 200);
  CHECK(answer.find("amount_base") != std::string::npos);                   // each rule's explanation: what it saw
  CHECK(answer.find("\"transaction_id\":\"txn-2\"") != std::string::npos);  // the account's recent ones
  // Its activity for the chart, oldest first, up to the case's last event (txn-2 came after):
  // the two flagged ones, marked as the case's.
  auto from = answer.find("\"activity\"");
  auto activity = answer.substr(from, answer.find("\"recent_transactions\"") - from);
  CHECK(activity.find(R"("transaction_id":"txn-0",)") < activity.find(R"("transaction_id":"txn-1",)"));
  CHECK(activity.find(R"("amount_minor":1250000,"currency":"EUR","decision":"review","in_case":true})") !=
        std::string::npos);
  CHECK(activity.find(R"("transaction_id":"txn-2")") == std::string::npos);
  CHECK(console.status("GET", "/api/cases/999999", "alice") == 404);

  // An analyst assigns only to themself; a lead to anyone.
  CHECK(console.status("POST", "/api/cases/" + id + "/assign", "alice", R"({"assignee":"bob"})") == 403);
  CHECK(console.status("POST", "/api/cases/" + id + "/assign", "lena", R"({"assignee":"bob"})") == 200);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE assignee = 'bob' AND state = 'assigned'") == 1);

  // Bad bodies say what is wrong; a body past the limit never reaches the API.
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "bob", R"({"disposition":"maybe"})") == 400);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "bob", "not json") == 400);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "bob", std::string(70 * 1024, 'x')) == 413);

  // Comments go on the case's timeline, before and after close, each with its audit row.
  CHECK(console.status("POST", "/api/cases/" + id + "/comment", "bob", R"({"body":"customer denies both"})") == 201);
  CHECK(console.status("POST", "/api/cases/" + id + "/comment", "bob", R"({"body":""})") == 400);
  CHECK(console.status("POST", "/api/cases/999999/comment", "bob", R"({"body":"lost"})") == 404);

  // Closed as fraud by bob; nobody changes that disposition afterwards, a lead included.
  CHECK(console.status("GET", "/api/cases/" + id, "bob", "", &answer) == 200);
  auto version = std::to_string(shown_version(answer));
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "bob",
                       R"({"disposition":"fraud","version":)" + version + "}", &answer) == 200);
  CHECK(answer.find("\"labelled\":2") != std::string::npos);
  for (const char* who : {"alice", "lena"})
    CHECK(console.status("POST", "/api/cases/" + id + "/close", who,
                         R"({"disposition":"legitimate","version":)" + version + "}") == 409);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE source = 'case' AND is_fraud AND labelled_by = 'bob'") == 2);
  CHECK(console.status("POST", "/api/cases/" + id + "/comment", "alice", R"({"body":"chargeback filed"})") == 201);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE object = 'case:" + id + "'") == 4);
  CHECK(console.status("GET", "/api/cases/" + id, "alice", "", &answer) == 200);
  auto denies = answer.find("\"author\" : \"bob\", \"body\" : \"customer denies both\"");
  CHECK(denies != std::string::npos);
  CHECK(answer.find("\"author\" : \"alice\", \"body\" : \"chargeback filed\"") > denies);  // in order
  CHECK(answer.find("\"action\" : \"case.close\"") != std::string::npos);
  // Per rule: large_amount's two hits, both now labelled fraud by bob's close.
  CHECK(console.status("GET", "/api/rules?days=30", "alice", "", &answer) == 200);
  CAPTURE(answer);
  CHECK(answer.find(R"("rule_id" : "large_amount", "hits" : 2, "labelled_fraud" : 2, "labelled_legitimate" : 0, )"
                    R"("precision" : 1.000)") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'lena' AND action = 'case.assign' AND "
                 "after ->> 'assignee' = 'bob'") == 1);

  CHECK(console.process->stop(SIGTERM, 30s) == 0);
  auto log = read_file(console.log);
  CHECK(log.find("console started") != std::string::npos);
  for (const char* secret : {"alice-token", "bob-token", "lena-token", "mallory-token"}) {
    CAPTURE(secret);
    CHECK(log.find(secret) == std::string::npos);
  }
  // Refusals and case reads are logged with who asked.
  CHECK(
      log.find(R"x("msg":"console request refused","actor":"(no valid token)","method":"GET","path":"/api/cases")x") !=
      std::string::npos);
  CHECK(log.find(R"("msg":"console request refused","actor":"alice","method":"POST","path":"/api/cases/)") !=
        std::string::npos);
  CHECK(log.find(R"("msg":"case read","actor":"alice","method":"GET","path":"/api/cases/)" + id + "\"") !=
        std::string::npos);
}

TEST_CASE("a console request that waits on the database holds up no other") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases"));
  ConsoleProcess console(db);
  // Someone holds the case's row (a batch joining it, a maintenance job): an assignment waits.
  pqxx::connection holder_connection(db.url());
  pqxx::work holder(holder_connection);
  holder.exec1("SELECT case_id FROM fraud_cases FOR UPDATE");
  auto assigned = std::async(std::launch::async, [&] {
    return console.status("POST", "/api/cases/" + id + "/assign", "alice", R"({"assignee":"alice"})");
  });
  auto waiting = [&] { return a_session_waits_on_a_lock(db); };
  REQUIRE(wait_until(10s, waiting));
  // Meanwhile another analyst is answered, while the assignment still waits.
  std::string me;
  CHECK(console.status("GET", "/api/me", "bob", "", &me) == 200);
  CHECK(me == R"({"name":"bob","role":"analyst"})");
  CHECK(waiting());
  holder.commit();
  CHECK(assigned.get() == 200);
}

TEST_CASE("a close names the case version it was shown, and a case that gained an event since is not closed") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases WHERE account_id = 'acc-a'"));
  ConsoleProcess console(db);
  std::string page;
  REQUIRE(console.status("GET", "/api/cases/" + id, "alice", "", &page) == 200);
  auto seen = shown_version(page);

  // A batch joins a second flagged event to the case while alice reads it.
  history.apply({{1, transaction_event(1, "19000.00", "2026-11-27T09:01:00Z", "acc-a")}});
  std::string answer;
  auto close = [&](int version) {
    return console.status("POST", "/api/cases/" + id + "/close", "alice",
                          R"({"disposition":"legitimate","version":)" + std::to_string(version) + "}", &answer);
  };
  CHECK(close(seen) == 409);
  CHECK(answer.find("changed since") != std::string::npos);
  CHECK(db.count("SELECT count(*) FROM fraud_labels") == 0);  // txn-1 was never shown to her
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'closed'") == 0);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "alice", R"({"disposition":"legitimate"})") == 400);

  // Reloaded, she sees both events and closes what she saw.
  REQUIRE(console.status("GET", "/api/cases/" + id, "alice", "", &page) == 200);
  CHECK(page.find("\"transaction_id\" : \"txn-1\"") != std::string::npos);
  CHECK(shown_version(page) > seen);
  CHECK(close(shown_version(page)) == 200);
  CHECK(answer == R"({"case_id":)" + id + R"(,"labelled":2})");
}

TEST_CASE("a retried POST under the same Idempotency-Key returns the first answer and changes nothing more") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases"));
  ConsoleProcess console(db, FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml");
  // Each request twice, as a page whose first reply was lost sends it again.
  auto twice = [&](const std::string& key, const std::string& target, const std::string& who,
                   const std::string& body = "") {
    std::string first, second;
    auto status = console.post(key, target, who, body, &first);
    CHECK(console.post(key, target, who, body, &second) == status);
    CHECK(second == first);
    return std::pair{status, first};
  };
  CHECK(twice("k-add", "/api/lists/deny_cards/entries", "alice", R"({"value":"card-9","reason":"stolen"})").first ==
        201);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries") == 1);  // no twin left in force
  auto allow = twice("k-allow", "/api/lists/allow_accounts/entries", "lena", R"({"value":"acc-2","reason":"vip"})");
  CHECK(allow.first == 202);
  CHECK(db.count("SELECT count(*) FROM fraud_proposals") == 1);  // one proposal, not two
  auto proposal = std::to_string(db.count("SELECT proposal_id FROM fraud_proposals"));
  CHECK(twice("k-approve", "/api/proposals/" + proposal + "/approve", "lars").first ==
        200);  // not "approved already" the second time
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries WHERE list_name = 'allow_accounts'") == 1);
  auto entry = std::to_string(db.count("SELECT entry_id FROM fraud_list_entries WHERE value = 'acc-2'"));
  CHECK(twice("k-end", "/api/lists/entries/" + entry + "/end", "bob").first == 200);  // not "Refused" the second time
  CHECK(twice("k-note", "/api/cases/" + id + "/comment", "alice", R"({"body":"called the customer"})").first == 201);
  CHECK(db.count("SELECT count(*) FROM fraud_case_comments") == 1);
  std::string page;
  REQUIRE(console.status("GET", "/api/cases/" + id, "alice", "", &page) == 200);
  auto closed = twice("k-close", "/api/cases/" + id + "/close", "alice",
                      R"({"disposition":"fraud","version":)" + std::to_string(shown_version(page)) + "}");
  CHECK(closed.first == 200);
  CHECK(closed.second == R"({"case_id":)" + id + R"(,"labelled":1})");
  // list.add, proposal.propose, proposal.approve with its list.add, list.end, comment, close
  CHECK(db.count("SELECT count(*) FROM audit_log") == 7);

  // A key names one request: used again for another, or by another analyst, it is refused.
  std::string answer;
  CHECK(console.post("k-add", "/api/lists/deny_cards/entries", "alice", R"({"value":"card-8","reason":"stolen"})",
                     &answer) == 422);
  CHECK(answer.find("Idempotency-Key") != std::string::npos);
  CHECK(console.post("k-note", "/api/cases/" + id + "/comment", "bob", R"({"body":"called the customer"})") == 422);
  // A POST without one is refused before it does anything.
  int status = 0;
  http_call(console.port, {"POST", "/api/cases/" + id + "/comment", "Bearer alice-token", R"({"body":"x"})"}, &status);
  CHECK(status == 400);
  CHECK(db.count("SELECT count(*) FROM fraud_case_comments") == 1);
}

TEST_CASE("a retry racing its first attempt waits for it and returns its answer") {
  auto services = Services::from_environment();
  TestDatabase db(services);
  const std::string add = "SELECT fraud_list_add('deny_cards', 'card-9', 'stolen', NULL, 'alice', 'k-race')";
  // The first attempt has made its change but not committed (its reply is on the way).
  pqxx::connection first_connection(db.console_url());
  pqxx::work first(first_connection);
  auto entry = first.exec1(add)[0].as<std::int64_t>();
  // The retry arrives meanwhile: it waits on the key, then finds the first attempt's answer.
  auto retry = std::async(std::launch::async, [&] {
    pqxx::connection c(db.console_url());
    pqxx::work tx(c);
    auto id = tx.exec1(add)[0].as<std::int64_t>();
    tx.commit();
    return id;
  });
  REQUIRE(wait_until(10s, [&] { return a_session_waits_on_a_lock(db); }));
  first.commit();
  REQUIRE(retry.wait_for(10s) == std::future_status::ready);
  CHECK(retry.get() == entry);
  CHECK(db.count("SELECT count(*) FROM fraud_list_entries") == 1);
}

TEST_CASE("an analyst neither takes nor closes a case another analyst has, and a lead does both") {
  AppliedHistory history;
  auto& db = history.db;
  history.apply({{0, transaction_event(0, "12500.00", "2026-11-27T09:00:00Z", "acc-a")}});
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases"));
  ConsoleProcess console(db);
  auto close = [&](const std::string& who) {
    std::string page;
    REQUIRE(console.status("GET", "/api/cases/" + id, who, "", &page) == 200);
    return console.status("POST", "/api/cases/" + id + "/close", who,
                          R"({"disposition":"fraud","version":)" + std::to_string(shown_version(page)) + "}");
  };
  REQUIRE(console.status("POST", "/api/cases/" + id + "/assign", "bob", R"({"assignee":"bob"})") == 200);
  std::string answer;
  CHECK(console.status("POST", "/api/cases/" + id + "/assign", "alice", R"({"assignee":"alice"})", &answer) == 403);
  CHECK(answer.find("only a lead may take a case assigned to bob") != std::string::npos);
  CHECK(close("alice") == 403);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'assigned' AND assignee = 'bob'") == 1);
  CHECK(console.status("POST", "/api/cases/" + id + "/assign", "lena", R"({"assignee":"alice"})") == 200);
  CHECK(close("bob") == 403);  // alice's now
  CHECK(close("alice") == 200);
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE state = 'closed' AND closed_by = 'alice'") == 1);
}

// Revocation without a restart: the console reads its tokens file again when it changes.
TEST_CASE(
    "a token deleted from the tokens file is refused at once, and a file that stops loading refuses every token") {
  TestDatabase db(Services::from_environment());
  ConsoleProcess console(db);
  CHECK(console.status("GET", "/api/cases", "alice") == 200);
  std::ofstream(console.tokens) << "bob analyst " << console::sha256_hex("bob-token") << "\n";
  CHECK(console.status("GET", "/api/cases", "alice") == 401);
  CHECK(console.status("GET", "/api/cases", "bob") == 200);
  std::ofstream(console.tokens) << "bob analyst " << console::sha256_hex("bob-token") << " lead\n";  // broken
  CHECK(console.status("GET", "/api/cases", "bob") == 401);
  std::ifstream log(console.log);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("every token is refused until it does") != std::string::npos);
}

namespace {

/// The links answer's accounts as "field value account events blocks reviews fraud open-case?",
/// in its order.
std::vector<std::string> links_of(const std::string& answer) {
  simdjson::dom::parser parser;
  std::vector<std::string> found;
  simdjson::dom::array links = parser.parse(answer)["links"].get_array().value();
  for (auto link : links) {
    auto text = [&](const char* name) { return std::string(link[name].get_string().value()); };
    auto number = [&](const char* name) { return std::to_string(link[name].get_int64().value()); };
    found.push_back(text("field") + " " + text("value") + " " + text("account_id") + " " + number("events") + " " +
                    number("blocks") + " " + number("reviews") + " " + number("labelled_fraud") + " " +
                    (link["open_case"].is_null() ? "no-case" : "case"));
  }
  return found;
}

}  // namespace

TEST_CASE("a case's links are the other accounts that shared its devices and cards in the period, through indexes") {
  AppliedHistory history;
  auto& db = history.db;
  // acc-a's case has one event, at 09:00: the period is the 30 days up to it.
  history.apply({{0, paid_from(1, "acc-a", "2026-11-27T09:00:00Z", "dev-1", "card-a", "12500.00")},
                 {1, paid_from(2, "acc-a", "2026-11-27T08:55:00Z", "dev-2", "card-a")},
                 {2, paid_from(3, "acc-b", "2026-11-27T08:10:00Z", "dev-1", "card-b", "15000.00")},
                 {3, paid_from(4, "acc-b", "2026-11-27T08:11:00Z", "dev-1", "card-b")},
                 {4, paid_from(5, "acc-c", "2026-11-27T08:12:00Z", "dev-9", "card-a")},
                 {5, paid_from(6, "acc-d", "2026-10-01T09:00:00Z", "dev-1", "card-d")},  // 57 days before
                 {6, paid_from(7, "acc-e", "2026-11-27T08:13:00Z", "dev-3", "card-e")},
                 {7, paid_from(8, "acc-f", "2026-11-27T09:30:00Z", "dev-1", "card-f")},  // after it
                 // acc-a used dev-7 only after its case's last event: not a value of the period,
                 // so acc-g, which used it within the period, is no link.
                 {8, paid_from(9, "acc-a", "2026-11-27T09:10:00Z", "dev-7", "card-a")},
                 {9, paid_from(10, "acc-g", "2026-11-27T08:30:00Z", "dev-7", "card-g")}});
  db.query(
      "INSERT INTO fraud_labels (transaction_id, is_fraud, source, labelled_by) VALUES ('txn-3', true, 'manual', "
      "'test')");
  auto id = std::to_string(db.count("SELECT case_id FROM fraud_cases WHERE account_id = 'acc-a'"));
  ConsoleProcess console(db);

  // Without an index a field is not searched (a scan of months of history would be), and the
  // answer says so. (`migrate` keeps the indexes of the fields rules read: 0024.)
  for (const char* column : {"card_fingerprint", "device_id", "device_ip", "counterparty_account"})
    db.query(std::string("DROP INDEX IF EXISTS transactions_by_") + column);
  std::string answer;
  REQUIRE(console.status("GET", "/api/cases/" + id + "/links", "alice", "", &answer) == 200);
  CAPTURE(answer);
  CHECK(links_of(answer).empty());
  CHECK(answer.find(R"("not_indexed" : ["card.fingerprint","device.id","device.ip","counterparty.account"])") !=
        std::string::npos);

  // The indexes as `migrate` builds them (store/key_indexes.cpp).
  REQUIRE(store::build_key_indexes(db.url(), {rules::KeyField::device_id, rules::KeyField::card_fingerprint}).size() ==
          2);
  REQUIRE(console.status("GET", "/api/cases/" + id + "/links", "alice", "", &answer) == 200);
  CAPTURE(answer);
  // acc-c paid with acc-a's card; acc-b used its first device, one of its two events a
  // review with an open case and labelled fraud. acc-d used the device 57 days before and
  // acc-f after the case's last event, both outside the period; acc-e shared nothing; acc-a
  // itself is not its own link.
  CHECK(links_of(answer) == std::vector<std::string>{"card.fingerprint card-a acc-c 1 0 0 0 no-case",
                                                     "device.id dev-1 acc-b 2 0 1 1 case"});
  CHECK(answer.find(R"("not_indexed" : ["device.ip","counterparty.account"])") != std::string::npos);

  REQUIRE(console.status("GET", "/api/cases/" + id + "/links?days=90", "alice", "", &answer) == 200);
  CHECK(links_of(answer) == std::vector<std::string>{"card.fingerprint card-a acc-c 1 0 0 0 no-case",
                                                     "device.id dev-1 acc-b 2 0 1 1 case",
                                                     "device.id dev-1 acc-d 1 0 0 0 no-case"});
  REQUIRE(console.status("GET", "/api/cases/" + id + "/links?accounts=1", "alice", "", &answer) == 200);
  CHECK(links_of(answer) == std::vector<std::string>{"card.fingerprint card-a acc-c 1 0 0 0 no-case"});
  CHECK(console.status("GET", "/api/cases/999999/links", "alice") == 404);
  CHECK(console.status("GET", "/api/cases/" + id + "/links", "") == 401);

  // Each value reads its 500 latest events in the period, whoever's: after 500 more of acc-a's
  // own on dev-1, acc-b's earlier use of it is beyond the bound (the card's link remains).
  db.query(
      "INSERT INTO transactions (event_id, occurred_at, account_id, device_id, amount_minor, currency, "
      "transaction_id, body) SELECT 'own-' || g, timestamptz '2026-11-27 08:15Z' + g * interval '5 seconds', "
      "'acc-a', 'dev-1', 100, 'EUR', 'own-' || g, '{}' FROM generate_series(1, 500) g");
  REQUIRE(console.status("GET", "/api/cases/" + id + "/links", "alice", "", &answer) == 200);
  CHECK(links_of(answer) == std::vector<std::string>{"card.fingerprint card-a acc-c 1 0 0 0 no-case"});

  // A read of who else used what: logged with who asked, as every case read is.
  CHECK(console.process->stop(SIGTERM, 30s) == 0);
  CHECK(read_file(console.log)
            .find(R"("msg":"case read","actor":"alice","method":"GET","path":"/api/cases/)" + id + "/links\"") !=
        std::string::npos);
}
