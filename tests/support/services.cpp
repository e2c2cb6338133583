#include "tests/support/services.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>

#include "rules/features.h"
#include "store/key_indexes.h"
#include "store/migrations.h"

namespace fraud::testing {
namespace {

using namespace std::chrono_literals;

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
  auto last = through.empty() || through == kLatestAsMigrated
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

void restart_service(const std::string& name) {
  std::string command = std::string(FRAUD_SOURCE_DIR) + "/scripts/services restart " + name + " >&2";
  REQUIRE_MESSAGE(std::system(command.c_str()) == 0, command);
}

}  // namespace fraud::testing
