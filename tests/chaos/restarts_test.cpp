// PostgreSQL and the Kafka broker restarted under load. These restart the services every
// other test shares, so CTest runs them alone (RUN_SERIAL, tests/CMakeLists.txt).
#include <doctest/doctest.h>

#include "tests/chaos/cluster.h"

using namespace fraud::testing;
using namespace std::chrono_literals;

namespace {

/// Two replicas consume `waves` waves of 25,000 events while `service` is restarted after
/// each wave is published; nothing may be lost or doubled.
void ride_out_restarts(const std::string& service, int waves) {
  Cluster cluster(4, service + "-restart");
  cluster.start(0);
  cluster.start(1);
  REQUIRE(wait_until(60s, [&] { return cluster.owners_are(2); }));
  for (int w = 0; w < waves; ++w) {
    cluster.produce(wave(w * 25000, (w + 1) * 25000, 10, 1009));
    restart_service(service);
  }
  CHECK(wait_until(120s, [&] { return cluster.caught_up(); }));
  cluster.stop_all();

  cluster.check_exactly_once();
  CHECK(cluster.db().count("SELECT count(*) FROM processed_events") == waves * 25000);
  CHECK(cluster.db().count("SELECT count(*) FROM fraud_alerts") == large_events_below(waves * 25000));
}

}  // namespace

TEST_CASE("PostgreSQL restarted under load: the replicas recover by themselves") { ride_out_restarts("postgres", 4); }

TEST_CASE("the Kafka broker restarted under load: the replicas recover by themselves") {
  ride_out_restarts("kafka", 3);
}
