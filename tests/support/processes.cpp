#include "tests/support/processes.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "console/tokens.h"
#include "tests/support/http.h"
#include "tests/support/wait.h"

namespace fraud::testing {

using namespace std::chrono_literals;

std::map<std::string, std::string> replica_environment(const Services& services, const std::string& database_url,
                                                       const std::string& topic, const std::string& group,
                                                       const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> env = {
      {"FRAUD_KAFKA_BOOTSTRAP_SERVERS", services.bootstrap_servers},
      {"FRAUD_POSTGRES_URL", database_url},
      {"FRAUD_KAFKA_TOPICS", topic},
      {"FRAUD_KAFKA_GROUP_ID", group},
      {"FRAUD_KAFKA_PROPERTIES_SESSION_TIMEOUT_MS", "6000"},
      {"FRAUD_METRICS_LISTEN", "127.0.0.1:0"},
      {"FRAUD_RULES_FILE", FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"},
      // The tests' events have fixed dates; only the
      // retention test runs with a dedup window.
      {"FRAUD_RETENTION_DAYS", "0"},
      {"FRAUD_LOG_LEVEL", "info"}};
  for (const auto& [name, value] : overrides) env[name] = value;
  return env;
}

ChildProcess::ChildProcess(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                           const std::string& log_path) {
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) dup2(fd, 2);
    }
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    // scripts/test's "mechanisms" stage runs these tests against a service built with
    // mechanism switches (ops/mechanism_switch.h), to see them fail.
    auto program = args;
    const char* other = std::getenv("FRAUD_TEST_CONSUMER_BINARY");
    if (other && *other && program[0] == FRAUD_CONSUMER_BINARY) program[0] = other;
    const char* other_relay = std::getenv("FRAUD_TEST_RELAY_BINARY");
    if (other_relay && *other_relay && program[0] == FRAUD_RELAY_BINARY) program[0] = other_relay;
    std::vector<char*> argv;
    for (const auto& a : program) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) stop(SIGKILL, 10s);
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
  pid_ = -1;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return false;
}

std::optional<int> ChildProcess::stop(int signal, std::chrono::seconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, signal);
  int status = 0;
  bool exited = wait_until(timeout, [&] { return waitpid(pid_, &status, WNOHANG) == pid_; });
  if (!exited) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  pid_ = -1;
  if (!exited) return std::nullopt;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

unsigned short logged_port(const std::string& log_path, const std::string& name) {
  std::smatch m;
  std::string log = read_file(log_path);
  std::regex pattern("\"" + name + "\":\"([0-9]+)\"");
  return std::regex_search(log, m, pattern) ? static_cast<unsigned short>(std::stoi(m[1])) : 0;
}

std::string output_of(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  while (auto n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  pclose(pipe);
  return out;
}

std::string backtest_report(TestDatabase& db, const std::string& rules_file, const std::string& arguments) {
  return output_of("FRAUD_POSTGRES_URL='" + db.service_url() +
                   "' FRAUD_KAFKA_BOOTSTRAP_SERVERS=unused:1 FRAUD_RULES_FILE=" + rules_file + " " +
                   FRAUD_CONSUMER_BINARY + " rules backtest --rules " + rules_file + " " + arguments + " 2>&1");
}

namespace {

std::string new_topic(const Services& services) {
  auto topic = unique_name("transactions");
  create_topic(services.bootstrap_servers, topic, 1);
  return topic;
}

}  // namespace

RunningReplica::RunningReplica(const std::string& rules_file)
    : services(Services::from_environment()), db(services), topic(new_topic(services)), group(unique_name("fraud")),
      process({FRAUD_CONSUMER_BINARY, "run"},
              replica_environment(services, db.service_url(), topic, group, {{"FRAUD_RULES_FILE", rules_file}})) {}

void RunningReplica::produce(const std::vector<OutgoingRecord>& records) {
  testing::produce(services.bootstrap_servers, topic, records);
}

bool RunningReplica::decided(int i, const std::string& decision) {
  return wait_until(30s, [&] {
    return db.count("SELECT count(*) FROM transactions WHERE event_id = 'evt-" + std::to_string(i) +
                    "' AND decision = '" + decision + "'") == 1;
  });
}

ConsoleProcess::ConsoleProcess(TestDatabase& db, const std::string& rules_file,
                               const std::map<std::string, std::string>& environment)
    : port(free_port()), log("/tmp/" + unique_name("console") + ".log"), tokens("/tmp/" + unique_name("tokens")) {
  std::ofstream(tokens) << "# name role sha256\n"
                        << "alice analyst " << console::sha256_hex("alice-token") << "\n"
                        << "bob analyst " << console::sha256_hex("bob-token") << "\n"
                        << "lena lead " << console::sha256_hex("lena-token") << "\n"
                        << "lars lead " << console::sha256_hex("lars-token") << "\n";
  std::map<std::string, std::string> settings{{"FRAUD_CONSOLE_POSTGRES_URL", db.console_url()},
                                              {"FRAUD_CONSOLE_LEAD_POSTGRES_URL", db.console_lead_url()},
                                              {"FRAUD_CONSOLE_TOKENS_FILE", tokens},
                                              {"FRAUD_RULES_FILE", rules_file},
                                              {"FRAUD_CONSOLE_LISTEN", "127.0.0.1:" + std::to_string(port)}};
  for (const auto& [name, value] : environment) settings[name] = value;
  process = std::make_unique<ChildProcess>(std::vector<std::string>{FRAUD_CONSOLE_BINARY, "run"}, settings, log);
  // The console's own file, not /healthz, which a replica that took the port would answer too.
  REQUIRE(wait_until(30s, [&] {
    int code = 0;
    return http_get(port, "/openapi.yaml", &code).has_value() && code == 200;
  }));
}

int ConsoleProcess::status(const std::string& method, const std::string& target, const std::string& who,
                           const std::string& body, std::string* answer) {
  if (method == "POST") return post(unique_name("key"), target, who, body, answer);
  int code = 0;
  auto response = http_call(port, {method, target, who.empty() ? "" : "Bearer " + token_of(who), body}, &code);
  if (answer && response) *answer = *response;
  return code;
}

int ConsoleProcess::approve(const std::string& proposed, const std::string& approver) {
  auto at = proposed.find("\"proposal_id\":");
  REQUIRE_MESSAGE(at != std::string::npos, "no proposal in " << proposed);
  auto id = std::stoll(proposed.substr(at + 14));
  return status("POST", "/api/proposals/" + std::to_string(id) + "/approve", approver);
}

int ConsoleProcess::post(const std::string& key, const std::string& target, const std::string& who,
                         const std::string& body, std::string* answer) {
  int code = 0;
  auto response = http_call(port, {"POST", target, who.empty() ? "" : "Bearer " + token_of(who), body, key}, &code);
  if (answer && response) *answer = *response;
  return code;
}

int shown_version(const std::string& page) {
  auto at = page.find("\"version\": ");
  return at == std::string::npos ? -1 : std::stoi(page.substr(at + 11));
}

}  // namespace fraud::testing
