#pragma once
// What the feature engine needs from the database before a batch's new events are observed:
// each key's version (so a history another replica extended is read again) and the history
// of every key the engine does not hold. Internal to the store module.

#include <pqxx/pqxx>

#include <map>
#include <vector>

#include "events/decode.h"
#include "events/event.h"
#include "events/record.h"
#include "rules/features.h"

namespace fraud::store {

/// Takes the batch's keys in the shared order and drops the cached histories that other
/// replicas extended since this one last did; load_history() then reads those again.
/// `versions_complete`: per key field this replica registered, whether its versions are
/// complete (migrations/0012).
void synchronise_keys(pqxx::work& tx, rules::FeatureEngine& features, const std::vector<const events::Event*>& applied,
                      const std::map<rules::KeyField, bool>& versions_complete);

/// Gives the engine the history of every key it does not hold: one query per key field for
/// the whole batch. `decoder` reads the stored event bodies back.
void load_history(pqxx::work& tx, rules::FeatureEngine& features, const std::vector<const events::Event*>& applied,
                  events::Decoder& decoder);

}  // namespace fraud::store
