#pragma once
// The history's indexes for key fields (migrations/0024): one per field some rule reads, so
// an event writes no entry for a field nobody loads by. The tables' owner builds them
// (`fraud-consumer migrate`); a replica only checks that its rules' fields have one.

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "rules/features.h"

namespace fraud::store {

/// Whether the history has a valid index that loads `field`'s keys: one whose first column is
/// the field's, on every partition.
bool has_key_index(pqxx::transaction_base& tx, rules::KeyField field);

/// The fields whose history a replica of `engine` loads by key: its features' key fields and
/// the first fields of its first-seen pairs (a kind's backfill reads the history by them).
std::vector<rules::KeyField> fields_read_by_key(const rules::FeatureEngine& engine);

/// Builds the missing indexes of `fields` on the history, as its owner, without blocking
/// batches: CONCURRENTLY on each partition, then attached to an index of the parent table
/// (so a partition created later gets one too). Returns the fields it built an index for.
/// An index a failed build left invalid is dropped and built again.
std::vector<rules::KeyField> build_key_indexes(const std::string& owner_url,
                                               const std::vector<rules::KeyField>& fields);

/// The fields some replica registered (migrations/0012), and the first fields of the
/// maintained first-seen kinds (0023).
std::vector<rules::KeyField> registered_key_fields(const std::string& postgres_url);

}  // namespace fraud::store
