// The console in a real Chromium (Debian's package) driven by Playwright (tests/browser/
// console.mjs), against the real database, a running replica and the real console: an
// analyst triages five cases with the keyboard only, sees which account shared a case's
// device, and closes one after the page named the transaction it labels; axe-core finds no
// serious violation on the queue or a case. Another analyst reads why a case was opened and
// closes it as fraud, and the next backtest counts the labels; she deny-lists a card, and the
// replica blocks its next payment within seconds. A lead then proposes to suppress a rule from a second case, for that
// case's account; the lead cannot approve it, a second lead does. Screenshots go to build/tests/screenshots/.
#include <doctest/doctest.h>

#include <signal.h>

#include <filesystem>

#include "tests/support/integration.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

// Starts as lists_test.cpp's tests do (a replica on the list rules, its database); the browser
// is what differs.
TEST_CASE("an analyst closes a case as fraud and deny-lists a card in the browser, and both take effect") {
  auto rules = FRAUD_SOURCE_DIR "/tests/data/list_rules.yaml";
  RunningReplica replica(rules);
  auto& db = replica.db;
  // acc-7's first payment came from dev-7, which acc-11 used too; acc-10 to acc-13 each have
  // a case of their own for the keyboard walk.
  replica.produce({paid_from(1, "acc-7", "2026-11-27T09:00:00Z", "dev-7", "card-7", "12500.00"),
                   transaction_event(2, "42.10", "2026-11-27T09:05:00Z", "acc-7"),
                   transaction_event(3, "18000.00", "2026-11-27T09:10:00Z", "acc-7"),
                   transaction_event(4, "16000.00", "2026-11-27T09:15:00Z", "acc-8"),
                   paid_from(10, "acc-10", "2026-11-27T09:20:00Z", "dev-10", "card-10", "11000.00"),
                   paid_from(11, "acc-11", "2026-11-27T09:21:00Z", "dev-7", "card-11", "11100.00"),
                   paid_from(12, "acc-12", "2026-11-27T09:22:00Z", "dev-12", "card-12", "11200.00"),
                   paid_from(13, "acc-13", "2026-11-27T09:23:00Z", "dev-13", "card-13", "11300.00")});
  REQUIRE(wait_until(60s, [&] { return offsets_at_end(db, replica.services, replica.topic, 1); }));
  REQUIRE(db.count("SELECT event_count FROM fraud_cases WHERE account_id = 'acc-7'") == 2);
  REQUIRE(db.count("SELECT count(*) FROM fraud_cases") == 6);
  // The index `migrate` keeps when a rule reads device.id (these rules do not): the desk
  // searches links by the fields the history has an index for.
  db.query("CREATE INDEX IF NOT EXISTS transactions_by_device_id ON transactions (device_id, occurred_at)");

  ConsoleProcess console(db, rules);
  auto screenshots = std::filesystem::current_path() / "screenshots";
  std::filesystem::create_directories(screenshots);
  auto output = output_of(
      "cd " FRAUD_SOURCE_DIR "/tests/browser && FRAUD_CONSOLE_URL=http://127.0.0.1:" + std::to_string(console.port) +
      " FRAUD_CONSOLE_TOKEN=alice-token FRAUD_CASE_ACCOUNT=acc-7 FRAUD_DENY_CARD=card-77 FRAUD_LEAD_TOKEN=lena-token"
      " FRAUD_SECOND_LEAD_TOKEN=lars-token FRAUD_OTHER_ACCOUNT=acc-8 FRAUD_KEYBOARD_TOKEN=bob-token"
      " FRAUD_SCREENSHOTS_DIR=" +
      screenshots.string() + " timeout 120 node console.mjs 2>&1; echo \"exit $?\"");
  CAPTURE(output);
  CHECK(output.find("browser: the keyboard walk passed") != std::string::npos);
  CHECK(output.find("browser: the analyst's walk passed") != std::string::npos);
  CHECK(output.find("browser: the lead's walk passed") != std::string::npos);
  CHECK(output.find("exit 0") != std::string::npos);

  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE account_id = 'acc-7' AND state = 'closed' AND "
                 "disposition = 'fraud' AND closed_by = 'alice'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE source = 'case' AND is_fraud AND labelled_by = 'alice' "
                 "AND transaction_id IN ('txn-1', 'txn-3')") == 2);
  // assign, comment, close, list.add
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'alice'") == 4);
  // Bob, with the keyboard only: assigned acc-12's case, closed acc-11's as fraud.
  CHECK(db.count("SELECT count(*) FROM fraud_cases WHERE account_id = 'acc-12' AND assignee = 'bob'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_labels WHERE labelled_by = 'bob' AND is_fraud AND "
                 "transaction_id = 'txn-11'") == 1);
  CHECK(db.count("SELECT count(*) FROM audit_log WHERE actor = 'bob'") == 2);
  CHECK(db.count("SELECT count(*) FROM fraud_case_comments WHERE author = 'alice'") == 1);
  // lena proposed from acc-8's case a suppression for acc-8, and lars approved it.
  CHECK(db.count("SELECT count(*) FROM fraud_suppressions WHERE account_id = 'acc-8' AND author = 'lena'") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_suppressions") == 1);
  CHECK(db.count("SELECT count(*) FROM fraud_proposals WHERE state = 'approved' AND proposed_by = 'lena' AND "
                 "decided_by = 'lars'") == 1);

  // The deny-listed card's next payment, on the running replica, with no reload.
  replica.produce({paid_now(5, "acc-9", "card-77", "20.00")});
  CHECK(replica.decided(5, "block"));
  CHECK(replica.process.stop(SIGTERM, 30s) == 0);

  auto report = backtest_report(db, rules);
  CAPTURE(report);
  CHECK(report.find("labels           3 fraud, 0 legitimate, 6 unlabelled") != std::string::npos);
  CHECK(console.process->stop(SIGTERM, 30s) == 0);
}
