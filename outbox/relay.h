#pragma once
// The outbox relay: publishes the rows of a transactional outbox table to Kafka, at least
// once, and marks them sent (or deletes them) only after the broker acknowledged them. The
// bank simulator's TransactionRecorded events and the service's own alerts and dead letters
// both leave their databases this way.
//
// Several relays may run against one table. Each claims rows with FOR UPDATE SKIP LOCKED,
// so no two publish the same row at once. SKIP LOCKED alone would let two relays publish
// one key's rows out of order, so rows are also grouped into key buckets, and a relay takes
// a transaction-scoped advisory lock on each bucket it serves: one key, one relay at a time,
// in id order. A crash between publishing and marking sends those rows again: the
// at-least-once the consumer is built for.
//
// A row is marked only when the broker acknowledged that very row. A batch in which any row
// failed for a reason that may pass (broker down, missing topic, a fatal producer) rolls back
// whole and is retried with backoff. A row the broker or producer refuses for what it is
// (too large, an invalid record) is never marked: it stays unpublished in the table with its
// payload, is logged at error level and counted, and this process skips it so that it
// cannot hold up the rows behind it (see relay.cpp, "Rows that cannot be published").

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace fraud::outbox {

/// Which table and columns to read. Column names are identifiers, quoted before use.
struct OutboxTable {
  std::string table = "outbox";
  std::string id = "outbox_id";
  std::string topic = "topic";            ///< the Kafka topic of each row
  std::string key = "record_key";         ///< text or bytea; may be NULL
  std::string headers = "headers";        ///< jsonb: [[name, value], …] or {name: value}; may be empty
  std::string payload = "payload";        ///< text, jsonb or bytea
  std::string created_at = "created_at";  ///< for the publish-latency histogram; empty: none
  std::string sent_at = "published_at";   ///< marked on acknowledgement; unused when deleting
};

struct RelayConfig {
  std::string postgres_url;
  std::string bootstrap_servers;
  std::map<std::string, std::string> kafka_properties;
  OutboxTable table;
  bool delete_sent = false;  ///< delete acknowledged rows instead of marking them (banks keep them)
  int batch_rows = 500;      ///< rows claimed per transaction
  std::chrono::milliseconds idle_poll{100};
  std::chrono::milliseconds delivery_wait{30000};  ///< for a batch's delivery reports; then it is purged
  double duplicate_rate = 0;                       ///< fault injection: publish this share of rows twice
  long crash_after_batches = 0;  ///< fault injection: SIGKILL after publishing this batch, before marking
};

/// What the relay reports as it goes; the caller turns it into metrics.
struct RelayStats {
  std::atomic<std::uint64_t> published{0}, duplicates_sent{0}, failed_batches{0}, unpublishable{0};
  std::function<void(std::size_t rows)> on_published;
  std::function<void()> on_unpublishable;               ///< a row refused for its size or content
  std::function<void(std::int64_t rows)> on_pending;    ///< rows not yet published, every 2 s
  std::function<void(double seconds)> observe_latency;  ///< per row: created to acknowledged
};

class Relay {
 public:
  Relay(RelayConfig config, RelayStats& stats);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  /// Publishes until `stop` is set. Throws on a configuration error (a missing column).
  void run(const std::atomic<bool>& stop);

  /// Publishes what is claimable now, once; returns the number of rows published (marked).
  std::size_t publish_once();

  /// Marks rows id_from..id_to unsent again, so they are published again (a republish).
  static std::size_t republish(const std::string& postgres_url, const OutboxTable& table, std::int64_t id_from,
                               std::int64_t id_to);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fraud::outbox
