#pragma once
// The local PostgreSQL and Kafka that scripts/services starts, and a fresh database per test.

#include <cstdint>
#include <string>
#include <string_view>

#include <pqxx/pqxx>

namespace fraud::testing {

/// FRAUD_POSTGRES_URL and FRAUD_KAFKA_BOOTSTRAP_SERVERS, or a failed test saying how to start them.
struct Services {
  std::string postgres_url;
  std::string bootstrap_servers;
  static Services from_environment();
};

/// A name no earlier run used, for topics, groups and databases.
std::string unique_name(const std::string& prefix);

/// For TestDatabase: every migration, and only the history indexes they make themselves (as
/// `fraud-consumer migrate` leaves a database before it is given a rules file).
inline constexpr std::string_view kLatestAsMigrated = "*";

/// A database of its own, migrated, dropped when the test ends.
class TestDatabase {
 public:
  /// Migrated to the latest migration, or only up to the one whose name starts with
  /// `through` (e.g. "0016"), for a test of the upgrade from there; kLatestAsMigrated: all.
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

/// Restarts the local PostgreSQL or Kafka in place through scripts/services.
void restart_service(const std::string& name);

}  // namespace fraud::testing
