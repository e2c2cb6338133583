#pragma once
// What integration tests need around the real broker and database that scripts/services
// starts: a fresh database per test, topics, a producer, replicas as child processes, and
// bounded waits.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "consumer/batch_applier.h"
#include "store/batch_store.h"

namespace fraud::testing {

/// FRAUD_POSTGRES_URL and FRAUD_KAFKA_BOOTSTRAP_SERVERS, or a failed test saying how to start them.
struct Services {
  std::string postgres_url;
  std::string bootstrap_servers;
  static Services from_environment();
};

/// A name no earlier run used, for topics, groups and databases.
std::string unique_name(const std::string& prefix);

/// A database of its own, migrated, dropped when the test ends.
class TestDatabase {
 public:
  /// Migrated to the latest migration, or only up to the one whose name starts with
  /// `through` (e.g. "0016"), for a test of the upgrade from there.
  explicit TestDatabase(const Services& services, std::string_view through = {});
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  /// The owner's connection: migrations, and the tests' own reads.
  const std::string& url() const { return url_; }
  /// The service's connection: a login role that is only a member of fraud_service, as in
  /// production (migrations/0004_least_privilege.sql). Replicas run with this.
  std::string service_url() const;
  /// The service's outbox relay's connection: a member of fraud_outbox_relay only.
  std::string relay_url() const;
  /// The analysts' console's connection for analysts: a member of fraud_console only
  /// (migrations/0013).
  std::string console_url() const;
  /// The console's connection for leads: a member of fraud_console_lead (migrations/0019).
  std::string console_lead_url() const;
  /// The daily prune's connection: a member of fraud_maintenance only (migrations/0028).
  std::string maintenance_url() const;
  /// Applies the migrations a database made `through` one of them has not run yet.
  void migrate();
  /// The first column of the first row of `sql`, as an integer.
  std::int64_t count(const std::string& sql);
  /// All rows of `sql`.
  pqxx::result query(const std::string& sql);

 private:
  void index_every_key_field();

  std::string admin_url_, name_, url_;
};

/// The environment of a fraud-consumer replica of `group` on `topic`, writing to `database_url`:
/// a 6 s session timeout, a metrics port of its own, the tests' large-amount rule file, no
/// retention window (the tests' events have fixed dates).
/// Entries in `overrides` replace or add to these.
std::map<std::string, std::string> replica_environment(const Services& services, const std::string& database_url,
                                                       const std::string& topic, const std::string& group,
                                                       const std::map<std::string, std::string>& overrides = {});

/// Creates `topic` with `partitions` partitions and waits until the broker confirms it.
void create_topic(const std::string& bootstrap, const std::string& topic, int partitions);

/// The high watermark (next offset to be written) of each partition of `topic`.
std::map<std::int32_t, std::int64_t> high_watermarks(const std::string& bootstrap, const std::string& topic,
                                                     int partitions);

/// One record to produce.
struct OutgoingRecord {
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  std::int32_t partition = -1;  ///< -1: the partitioner picks one by key
};

/// Produces every record (keyed, so one key stays in one partition, in order) and waits until
/// the broker acknowledged them all.
void produce(const std::string& bootstrap, const std::string& topic, const std::vector<OutgoingRecord>& records);

/// A child process (a fraud-consumer replica, Prometheus) with its own environment on top
/// of this one; its stderr goes to `log_path` when one is given. Killed when destroyed.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
               const std::string& log_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  /// False once the process has exited (it is then reaped).
  bool running();
  /// How a process that running() found gone ended: its exit status, or 128 + the signal.
  std::optional<int> exit_status() const { return exit_status_; }
  /// Sends `signal` and waits up to `timeout` for the exit; returns the exit status, or
  /// nothing if it did not exit (it is then killed).
  std::optional<int> stop(int signal, std::chrono::seconds timeout);

 private:
  int pid_ = -1;
  std::optional<int> exit_status_;
};

/// One record as read back from a topic.
struct StoredRecord {
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string value;
};

/// Every record of `topic`, read from the beginning to the high watermarks.
std::vector<StoredRecord> read_topic(const std::string& bootstrap, const std::string& topic, int partitions);

/// The value of `"field":"…"` in a flat JSON text, or empty.
std::string json_field(const std::string& json, const std::string& field);

/// True when every partition's offset in consumer_offsets is at the topic's end.
bool offsets_at_end(TestDatabase& db, const Services& s, const std::string& topic, int partitions);

/// Invariants 1 and 2 against what the topic really holds: every event id has exactly one
/// processed_events row, at its first delivery; every record that is not JSON is in
/// rejected_events; every partition's stored offset is at its end (no range skipped).
void check_applied_exactly_once(TestDatabase& db, const Services& s, const std::string& topic, int partitions);

/// Alerts of tests/data/feature_rules.yaml (every event's alert records its account's
/// tx_count_1h) whose count is not the event's rank in its account by event time: a count
/// lost or doubled. `join` narrows the events, e.g. "JOIN outbox o ON t.event_id = o.id::text".
std::int64_t miscounted_alerts(TestDatabase& db, const std::string& join = "");

/// Accounts whose cases do not hold their flagged events (decision review or block in the
/// history) exactly once: not one case, or a case whose event count or linked events differ.
/// For tests in which no case is closed. A copy applied twice shows in the event count, which
/// no constraint forces.
std::int64_t miscased_accounts(TestDatabase& db);

/// A request to http://127.0.0.1:`port`: a body is sent as JSON.
struct HttpCall {
  std::string method, target, authorization = {}, body = {}, idempotency_key = {};
};
/// The response body to `call`, or nothing when there was none; `status` receives the HTTP status.
std::optional<std::string> http_call(unsigned short port, const HttpCall& call, int* status = nullptr);
/// The body of GET http://127.0.0.1:`port``target`, or nothing when it cannot be fetched;
/// `status` receives the HTTP status.
std::optional<std::string> http_get(unsigned short port, const std::string& target, int* status = nullptr);

/// A port on 127.0.0.1 that was free a moment ago.
unsigned short free_port();

/// Percent-encodes `text` for a URL query.
std::string url_encode(const std::string& text);

/// Restarts the local PostgreSQL or Kafka in place through scripts/services.
void restart_service(const std::string& name);

/// The text of a file, or empty.
std::string read_file(const std::string& path);

/// Runs a shell command and returns what it printed on stdout.
std::string output_of(const std::string& command);

/// What `fraud-consumer rules backtest --rules <rules_file> <arguments>` prints (stdout and
/// stderr) over `db`'s history, with `rules_file` as the active rules too.
std::string backtest_report(TestDatabase& db, const std::string& rules_file, const std::string& arguments = "");

/// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
bool wait_until(std::chrono::seconds timeout, const std::function<bool()>& condition);

/// The TransactionRecorded event number `i`, with `amount` in EUR, on account acc-(i % 37)
/// unless `account` is given, keyed by its account.
OutgoingRecord transaction_event(int i, const std::string& amount,
                                 const std::string& occurred_at = "2026-11-27T09:15:02.123Z",
                                 const std::string& account = "");

/// Event `i` of `account`, paid with `card`, occurring now (a runtime list's entry is in
/// force for the events that occur after it was added).
OutgoingRecord paid_now(int i, const std::string& account, const std::string& card, const std::string& amount);

/// The device tests' event `i`: card-i on acc-i, paying at 09:0i on 2026-11-27 from dev-1.
OutgoingRecord card_on_shared_device(int i);

/// A batch of partition 0 of topic "t": each record at its offset, decoded as the batch loop
/// decodes it, for tests that drive consumer::BatchApplier directly.
store::PartitionBatch partition_batch(std::int64_t epoch,
                                      const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records);

/// A fresh database, and a BatchApplier that applies batches of partition 0 of topic "t" under
/// tests/data/large_amount_rules.yaml (above 10,000 EUR: review), as the service would.
struct AppliedHistory {
  AppliedHistory();
  /// Applies `records` (offset, record) as one batch.
  void apply(const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records);

  Services services;
  TestDatabase db;
  rules::FeatureEngine engine;
  consumer::BatchApplier store;
  std::int64_t epoch;
};

/// A fresh database, a one-partition topic and a group of their own, and one replica with
/// `rules_file` consuming them: the setting of the tests that watch a running replica decide.
struct RunningReplica {
  explicit RunningReplica(const std::string& rules_file);
  void produce(const std::vector<OutgoingRecord>& records);
  /// Whether the service recorded `decision` for the event evt-`i` within 30 s.
  bool decided(int i, const std::string& decision);

  Services services;
  TestDatabase db;
  std::string topic, group;
  ChildProcess process;
};

/// fraud-console over `db` as a child process, with four analysts: alice and bob
/// (analysts), lena and lars (leads, so that one can approve what the other proposes), each
/// whose token is their name with "-token" after it, and the rules and lists of `rules_file`;
/// `environment` adds to or replaces its settings.
struct ConsoleProcess {
  explicit ConsoleProcess(TestDatabase& db, const std::string& rules_file = FRAUD_SOURCE_DIR "/config/rules.yaml",
                          const std::map<std::string, std::string>& environment = {});
  /// The status of `method` `target` as `who` (no token when empty); `answer` gets the body.
  /// A POST carries an Idempotency-Key of its own, as the page's do.
  int status(const std::string& method, const std::string& target, const std::string& who, const std::string& body = "",
             std::string* answer = nullptr);
  /// Has `approver` approve what the last answer (`{"proposal_id":N,…}`) proposed; the status.
  int approve(const std::string& proposed, const std::string& approver);
  /// The same for a POST under `key`: a retry sends the same one.
  int post(const std::string& key, const std::string& target, const std::string& who, const std::string& body = "",
           std::string* answer = nullptr);

  unsigned short port;
  std::string log;
  std::string tokens;  ///< the tokens file, which the console reads again when it changes
  /// The bearer token `who` signs on with: from the tokens file, unless a test signs on otherwise.
  std::function<std::string(const std::string& who)> token_of = [](const std::string& who) { return who + "-token"; };
  std::unique_ptr<ChildProcess> process;
};

}  // namespace fraud::testing
