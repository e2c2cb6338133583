#pragma once
// What the store already holds for an event an inline caller sends again (POST /v1/decisions):
// the content it was applied with, where it came first, and the decision made then. Internal
// to the store module; OpenBatch::prior_decisions() is its door.

#include <pqxx/pqxx>

#include <span>
#include <vector>

#include "events/event.h"
#include "store/batch_store.h"

namespace fraud::store {

/// Reads, in `tx`, the prior decision of each of `events` (found by identity); empty where the
/// identity was never applied.
std::vector<std::optional<PriorDecision>> read_prior_decisions(pqxx::work& tx,
                                                               std::span<const events::Event* const> events);

}  // namespace fraud::store
