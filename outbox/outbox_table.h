#pragma once
// The outbox table's SQL: the statements the relay prepares on its connection, built from the
// configured identifiers (quoted), with every value a parameter.

#include <pqxx/pqxx>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "outbox/relay.h"

namespace fraud::outbox {

/// The table lacks a configured column: a configuration error, not one to retry.
struct OutboxTableError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Key buckets: a relay serves a bucket's keys alone, so one key's rows go out in order.
inline constexpr int kBuckets = 16;

/// The columns of a claimed row, as the "claim" statement selects them.
enum ClaimedColumn { kId = 0, kTopic, kKey, kHeaders, kPayload, kCreatedMicros };

/// Prepares on `c`: "buckets" (the key buckets free of other relays, locked for the
/// transaction: $1 the lock's name), "claim" ($1 buckets, $2 row limit, $3 ids to skip),
/// "done" ($1 ids: mark or delete them) and "pending" (the unsent rows' count). Throws
/// OutboxTableError naming a column the table lacks.
void prepare_statements(pqxx::connection& c, const OutboxTable& table, bool delete_sent);

/// Marks rows id_from..id_to unsent again, so they are published again; returns how many.
std::size_t mark_unsent(pqxx::connection& c, const OutboxTable& table, std::int64_t id_from, std::int64_t id_to);

}  // namespace fraud::outbox
