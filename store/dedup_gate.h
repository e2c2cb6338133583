#pragma once
// The gate between batches and a rotation of the dedup generations (migrations/
// 0007_dedup_by_id.sql): every batch holds it shared from its first statement to its commit;
// a rotation takes it exclusive. The two-key form keeps it apart from the outbox relay's
// one-key bucket locks, which live in another key space.

namespace fraud::store {

/// Taken by a batch, as part of its first statement (a CTE), before it reads the current slot.
inline constexpr const char* kDedupGateShared = "SELECT pg_advisory_xact_lock_shared(1718770273, 1)";

/// Taken by `store prune` before it rotates the generations.
inline constexpr const char* kDedupGateExclusive = "SELECT pg_advisory_xact_lock(1718770273, 1)";

}  // namespace fraud::store
