#pragma once
// What a test checks the database against: the topic's records, the rules' counts, the cases.

#include <cstdint>
#include <string>

#include "tests/support/services.h"

namespace fraud::testing {

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

/// Whether one session of `db` waits on a lock (a row another transaction holds).
bool a_session_waits_on_a_lock(TestDatabase& db);

}  // namespace fraud::testing
