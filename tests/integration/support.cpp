#include "tests/integration/support.h"

#include <cstdio>
#include <utility>  // before Boost 1.74's asio, which needs std::exchange

#include <doctest/doctest.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "console/tokens.h"
#include "events/time.h"
#include "store/key_indexes.h"
#include "store/migrations.h"

namespace fraud::testing {
namespace {

using namespace std::chrono_literals;

struct KafkaDeleter {
  void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
template <typename T>
using KafkaPtr = std::unique_ptr<T, KafkaDeleter>;

KafkaPtr<rd_kafka_t> client(rd_kafka_type_t type, const std::string& bootstrap) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const char* name, const char* value) {
    if (rd_kafka_conf_set(conf, name, value, error, sizeof error) != RD_KAFKA_CONF_OK) throw std::runtime_error(error);
  };
  set("bootstrap.servers", bootstrap.c_str());
  if (type == RD_KAFKA_PRODUCER) set("enable.idempotence", "true");
  if (type == RD_KAFKA_CONSUMER) {  // librdkafka's assign() needs a group, though none is joined
    set("group.id", unique_name("reader").c_str());
    set("enable.auto.commit", "false");
  }
  rd_kafka_t* k = rd_kafka_new(type, conf, error, sizeof error);
  if (!k) throw std::runtime_error(std::string("kafka client: ") + error);
  return KafkaPtr<rd_kafka_t>(k);
}

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Replaces the database name of a libpq URI: postgresql://u@h:p/db?x -> …/other?x.
std::string with_database(const std::string& url, const std::string& database) {
  auto query = url.find('?');
  auto slash = url.rfind('/', query);
  return url.substr(0, slash + 1) + database + (query == std::string::npos ? "" : url.substr(query));
}

}  // namespace

Services Services::from_environment() {
  Services s{env_or_empty("FRAUD_POSTGRES_URL"), env_or_empty("FRAUD_KAFKA_BOOTSTRAP_SERVERS")};
  if (s.postgres_url.empty() || s.bootstrap_servers.empty())
    FAIL("integration tests need the local services: eval \"$(scripts/services up)\"");
  return s;
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch() / 1ms;
  return prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(now) + "_" + std::to_string(++counter);
}

namespace {
// Login roles for the group roles of migrations/0004_least_privilege.sql.
constexpr const char* kServiceLogin = "fraud_consumer_test";
constexpr const char* kRelayLogin = "fraud_relay_test";
constexpr const char* kConsoleLogin = "fraud_console_test";
constexpr const char* kConsoleLeadLogin = "fraud_console_lead_test";
constexpr const char* kMaintenanceLogin = "fraud_maintenance_test";
}  // namespace

TestDatabase::TestDatabase(const Services& services, std::string_view through)
    : admin_url_(services.postgres_url), name_(unique_name("fraud_it")), url_(with_database(admin_url_, name_)) {
  pqxx::connection admin(admin_url_);
  pqxx::nontransaction(admin).exec0("CREATE DATABASE " + name_);
  auto all = store::embedded_migrations();
  auto last = through.empty()
                  ? all.end() - 1
                  : std::find_if(all.begin(), all.end(), [&](const auto& m) { return m.name.starts_with(through); });
  REQUIRE_MESSAGE(last != all.end(), "no migration " << through);
  store::migrate(url_, all.first(static_cast<std::size_t>(last - all.begin()) + 1));
  if (through.empty()) index_every_key_field();
  // Roles are cluster-wide: each login role is made once and kept.
  for (auto [login, group] :
       {std::pair{kServiceLogin, "fraud_service"}, std::pair{kRelayLogin, "fraud_outbox_relay"},
        std::pair{kConsoleLogin, "fraud_console"}, std::pair{kConsoleLeadLogin, "fraud_console_lead"},
        std::pair{kMaintenanceLogin, "fraud_maintenance"}}) {
    try {
      pqxx::nontransaction(admin).exec0(std::string("CREATE ROLE ") + login + " LOGIN IN ROLE " + group);
    } catch (const pqxx::sql_error&) {
      // already there, from an earlier test or run
    }
  }
}

void TestDatabase::migrate() {
  store::migrate(url_, store::embedded_migrations());
  index_every_key_field();
}

// Tests run replicas of many rule files on one database: every field has its index, as
// `fraud-consumer migrate` builds one for the fields of the rules it is given.
void TestDatabase::index_every_key_field() {
  std::vector<rules::KeyField> every;
  for (const auto& spec : rules::kKeyFieldSpecs) every.push_back(spec.field);
  store::build_key_indexes(url_, every);
}

namespace {
std::string as_login(const std::string& url, const char* login) {
  return "postgresql://" + std::string(login) + url.substr(url.find('@'));
}
}  // namespace

std::string TestDatabase::service_url() const { return as_login(url_, kServiceLogin); }
std::string TestDatabase::relay_url() const { return as_login(url_, kRelayLogin); }
std::string TestDatabase::console_url() const { return as_login(url_, kConsoleLogin); }
std::string TestDatabase::console_lead_url() const { return as_login(url_, kConsoleLeadLogin); }
std::string TestDatabase::maintenance_url() const { return as_login(url_, kMaintenanceLogin); }

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection admin(admin_url_);
    pqxx::nontransaction(admin).exec0("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    MESSAGE("could not drop test database " << name_ << ": " << e.what());
  }
}

std::int64_t TestDatabase::count(const std::string& sql) {
  pqxx::connection c(url_);
  return pqxx::nontransaction(c).exec1(sql)[0].as<std::int64_t>();
}

pqxx::result TestDatabase::query(const std::string& sql) {
  pqxx::connection c(url_);
  return pqxx::nontransaction(c).exec(sql);
}

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

void create_topic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto admin = client(RD_KAFKA_PRODUCER, bootstrap);
  char error[512];
  KafkaPtr<rd_kafka_NewTopic_t> new_topic(rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, error, sizeof error));
  REQUIRE_MESSAGE(new_topic, error);
  KafkaPtr<rd_kafka_queue_t> queue(rd_kafka_queue_new(admin.get()));
  rd_kafka_NewTopic_t* topics[] = {new_topic.get()};
  rd_kafka_CreateTopics(admin.get(), topics, 1, nullptr, queue.get());
  KafkaPtr<rd_kafka_event_t> event(rd_kafka_queue_poll(queue.get(), 30000));
  REQUIRE_MESSAGE(event, "no answer to CreateTopics within 30 s");
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t count = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(result, &count);
  REQUIRE(count == 1);
  auto err = rd_kafka_topic_result_error(results[0]);
  REQUIRE_MESSAGE((err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS),
                  rd_kafka_err2str(err));
  // Metadata reaches every client a little later; wait until this one sees all partitions.
  REQUIRE(wait_until(30s, [&] { return high_watermarks(bootstrap, topic, partitions).size() == size_t(partitions); }));
}

std::map<std::int32_t, std::int64_t> high_watermarks(const std::string& bootstrap, const std::string& topic,
                                                     int partitions) {
  auto consumer = client(RD_KAFKA_CONSUMER, bootstrap);
  std::map<std::int32_t, std::int64_t> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), p, &low, &high, 5000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
      out[p] = high;
  }
  return out;
}

void produce(const std::string& bootstrap, const std::string& topic, const std::vector<OutgoingRecord>& records) {
  auto producer = client(RD_KAFKA_PRODUCER, bootstrap);
  std::string first_error;
  for (const auto& r : records) {
    rd_kafka_headers_t* headers = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers)
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                    RD_KAFKA_V_PARTITION(r.partition < 0 ? RD_KAFKA_PARTITION_UA : r.partition),
                                    RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(producer.get(), 100);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // the message owns the headers now
    rd_kafka_headers_destroy(headers);
    if (first_error.empty()) first_error = rd_kafka_err2str(err);
  }
  REQUIRE_MESSAGE(first_error.empty(), "produce failed: " << first_error);
  REQUIRE(rd_kafka_flush(producer.get(), 60000) == RD_KAFKA_RESP_ERR_NO_ERROR);
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

std::vector<StoredRecord> read_topic(const std::string& bootstrap, const std::string& topic, int partitions) {
  auto highs = high_watermarks(bootstrap, topic, partitions);
  auto consumer = client(RD_KAFKA_CONSUMER, bootstrap);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  auto err = rd_kafka_assign(consumer.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  REQUIRE(err == RD_KAFKA_RESP_ERR_NO_ERROR);
  std::int64_t expected = 0;
  for (auto [p, high] : highs) expected += high;
  std::vector<StoredRecord> out;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (static_cast<std::int64_t>(out.size()) < expected && std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 500);
    if (!m) continue;
    if (!m->err) out.push_back({m->partition, m->offset, std::string(static_cast<const char*>(m->payload), m->len)});
    rd_kafka_message_destroy(m);
  }
  REQUIRE(static_cast<std::int64_t>(out.size()) == expected);
  rd_kafka_consumer_close(consumer.get());
  return out;
}

std::string json_field(const std::string& json, const std::string& field) {
  auto at = json.find("\"" + field + "\"");
  if (at == std::string::npos) return "";
  at = json.find_first_not_of(" :", at + field.size() + 2);  // `"f":"v"` and `"f" : "v"` alike
  if (at == std::string::npos || json[at] != '"') return "";
  return json.substr(at + 1, json.find('"', at + 1) - at - 1);
}

bool offsets_at_end(TestDatabase& db, const Services& s, const std::string& topic, int partitions) {
  auto highs = high_watermarks(s.bootstrap_servers, topic, partitions);
  if (highs.size() != static_cast<size_t>(partitions)) return false;
  for (auto [partition, high] : highs) {
    auto stored = db.count("SELECT coalesce(max(next_offset), 0) FROM consumer_offsets WHERE topic = '" + topic +
                           "' AND partition = " + std::to_string(partition));
    if (stored != high) return false;
  }
  return true;
}

void check_applied_exactly_once(TestDatabase& db, const Services& s, const std::string& topic, int partitions) {
  std::map<std::string, std::pair<std::int32_t, std::int64_t>> first_delivery;
  std::set<std::pair<std::int32_t, std::int64_t>> poison;
  for (const auto& r : read_topic(s.bootstrap_servers, topic, partitions)) {
    auto id = json_field(r.value, "event_id");
    if (r.value.empty() || r.value.back() != '}') poison.insert({r.partition, r.offset});
    else first_delivery.try_emplace(id, r.partition, r.offset);
  }
  auto rows = db.query("SELECT event_id, partition, \"offset\" FROM processed_events WHERE topic = '" + topic + "'");
  CHECK(rows.size() == first_delivery.size());
  std::size_t misplaced = 0;
  for (const auto& row : rows) {
    auto it = first_delivery.find(row[0].as<std::string>());
    if (it == first_delivery.end() ||
        it->second != std::make_pair(row[1].as<std::int32_t>(), row[2].as<std::int64_t>()))
      ++misplaced;
  }
  CHECK_MESSAGE(misplaced == 0, misplaced << " events applied at other than their first delivery");
  CHECK(static_cast<std::size_t>(db.count("SELECT count(*) FROM rejected_events WHERE topic = '" + topic + "'")) ==
        poison.size());
  CHECK(offsets_at_end(db, s, topic, partitions));
}

std::int64_t miscounted_alerts(TestDatabase& db, const std::string& join) {
  return db.count(
      "SELECT count(*) FROM (SELECT a.reason, rank() OVER (PARTITION BY t.account_id ORDER BY t.occurred_at) AS n "
      "FROM fraud_alerts a JOIN transactions t USING (event_source, event_id) " +
      join + ") x WHERE x.reason <> 'tx_count_1h (' || x.n || ') >= 1'");
}

std::int64_t miscased_accounts(TestDatabase& db) {
  return db.count(R"sql(
    WITH flagged AS (
      SELECT account_id, count(*) AS n FROM transactions WHERE decision IN ('review', 'block') GROUP BY account_id
    ), cased AS (
      SELECT c.account_id, sum(c.event_count) AS counted, count(*) AS cases,
             sum((SELECT count(*) FROM fraud_case_events e WHERE e.case_id = c.case_id)) AS linked
      FROM fraud_cases c GROUP BY c.account_id
    )
    SELECT count(*) FROM flagged f FULL JOIN cased c USING (account_id)
    WHERE f.n IS DISTINCT FROM c.counted OR f.n IS DISTINCT FROM c.linked OR c.cases <> 1)sql");
}

std::optional<std::string> http_call(unsigned short port, const HttpCall& call, int* status) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  try {
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> request{http::string_to_verb(call.method), call.target, 11};
    request.set(http::field::host, "127.0.0.1");
    if (!call.authorization.empty()) request.set(http::field::authorization, call.authorization);
    if (!call.body.empty()) request.set(http::field::content_type, "application/json");
    if (!call.idempotency_key.empty()) request.set("Idempotency-Key", call.idempotency_key);
    request.body() = call.body;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (status) *status = static_cast<int>(response.result_int());
    return response.body();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<std::string> http_get(unsigned short port, const std::string& target, int* status) {
  return http_call(port, {"GET", target}, status);
}

unsigned short free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

std::string url_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += '%', out += kHex[c >> 4], out += kHex[c & 15];
  }
  return out;
}

void restart_service(const std::string& name) {
  std::string command = std::string(FRAUD_SOURCE_DIR) + "/scripts/services restart " + name + " >&2";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
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

bool wait_until(std::chrono::seconds timeout, const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

OutgoingRecord paid_now(int i, const std::string& account, const std::string& card, const std::string& amount) {
  auto record = transaction_event(i, amount, events::format_rfc3339(events::wall_clock_now()), account);
  record.value.insert(record.value.rfind('}'), ",\"card\":{\"fingerprint\":\"" + card + "\"}");
  return record;
}

OutgoingRecord card_on_shared_device(int i) {
  char when[32];
  std::snprintf(when, sizeof when, "2026-11-27T09:%02d:00Z", i);
  auto record = transaction_event(i, "10.00", when, "acc-" + std::to_string(i));
  record.value.insert(record.value.rfind('}'),
                      ",\"device\":{\"id\":\"dev-1\"},\"card\":{\"fingerprint\":\"card-" + std::to_string(i) + "\"}");
  return record;
}

OutgoingRecord transaction_event(int i, const std::string& amount, const std::string& occurred_at,
                                 const std::string& account_id) {
  std::string n = std::to_string(i), account = account_id.empty() ? "acc-" + std::to_string(i % 37) : account_id;
  std::string value = R"({"event_id":"evt-)" + n + R"(","event_type":"TransactionRecorded","schema_version":1,)" +
                      R"("occurred_at":")" + occurred_at + R"(","recorded_at":"2026-11-27T09:15:02.140Z",)" +
                      R"("transaction_id":"txn-)" + n + R"(","account_id":")" + account + R"(",)" +
                      R"("kind":"purchase","direction":"debit","amount":{"value":")" + amount +
                      R"(","currency":"EUR"},"channel":"card_not_present"})";
  return {account, value, {}};
}

store::PartitionBatch partition_batch(std::int64_t epoch,
                                      const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records) {
  store::PartitionBatch batch{"t", 0, epoch, {}};
  events::Decoder decoder;
  for (const auto& [offset, out] : records) {
    events::Record record{"t", 0, offset, 0, out.key, {}, out.value};
    for (const auto& [name, value] : out.headers) record.headers.emplace_back(name, value);
    auto decoded = record.decode(decoder);
    batch.records.push_back({record, decoded.event, decoded.error});
  }
  return batch;
}

AppliedHistory::AppliedHistory()
    : services(Services::from_environment()), db(services),
      engine(std::make_shared<const rules::RuleSet>(
          rules::RuleSet::load(FRAUD_SOURCE_DIR "/tests/data/large_amount_rules.yaml"))),
      store(db.service_url(), "g", "test", {}), epoch(store.claim("t", 0).epoch) {}

void AppliedHistory::apply(const std::vector<std::pair<std::int64_t, OutgoingRecord>>& records) {
  store.apply(partition_batch(epoch, records), engine);
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

}  // namespace fraud::testing
