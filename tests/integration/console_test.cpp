// fraud-console's API on the real database, as a child process: who may do what, and what
// each action leaves behind (labels, the audit). The browser test drives the page itself.
#include <doctest/doctest.h>

#include <signal.h>

#include "tests/integration/support.h"

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
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "bob", R"({"disposition":"fraud"})", &answer) == 200);
  CHECK(answer.find("\"labelled\":2") != std::string::npos);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "alice", R"({"disposition":"legitimate"})") == 409);
  CHECK(console.status("POST", "/api/cases/" + id + "/close", "lena", R"({"disposition":"legitimate"})") == 409);
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
}
