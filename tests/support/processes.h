#pragma once
// Our programs as child processes: replicas, the console, backtests. Each is killed when the
// test ends, so a failed test leaves nothing running.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/kafka.h"
#include "tests/support/services.h"

namespace fraud::testing {

/// The environment of a fraud-consumer replica of `group` on `topic`, writing to `database_url`:
/// a 6 s session timeout, a metrics port of its own, the tests' large-amount rule file, no
/// retention window (the tests' events have fixed dates).
/// Entries in `overrides` replace or add to these.
std::map<std::string, std::string> replica_environment(const Services& services, const std::string& database_url,
                                                       const std::string& topic, const std::string& group,
                                                       const std::map<std::string, std::string>& overrides = {});

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

/// The port a process of ours logged under `name` ("metrics_port", "decisions_port") in the
/// log at `log_path`, or 0 while it has not.
unsigned short logged_port(const std::string& log_path, const std::string& name);

/// Runs a shell command and returns what it printed on stdout.
std::string output_of(const std::string& command);

/// What `fraud-consumer rules backtest --rules <rules_file> <arguments>` prints (stdout and
/// stderr) over `db`'s history, with `rules_file` as the active rules too.
std::string backtest_report(TestDatabase& db, const std::string& rules_file, const std::string& arguments = "");

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

/// The version of the case a console case page shows (`"version": N` in its JSON), or -1.
int shown_version(const std::string& page);

}  // namespace fraud::testing
