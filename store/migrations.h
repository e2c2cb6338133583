#pragma once
// Numbered SQL migrations, applied in order, each once, under an advisory lock so replicas
// starting together do not race. schema_migrations records what ran and its checksum.

#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace fraud::store {

/// The advisory lock a migration, or a build of the history's key indexes, holds for its
/// session: any fixed number works, if every replica uses it ("fraud").
inline constexpr long long kMigrationLock = 0x6672617564;

struct Migration {
  std::string_view name;  ///< file name, e.g. "0001_core_tables.sql"; its number orders it
  std::string_view sql;
};

/// The migrations in migrations/, compiled into this binary in file-name order.
std::span<const Migration> embedded_migrations();

/// Applies every migration not yet recorded, each in its own transaction. Fails, naming the
/// file, when an applied migration's text has changed since it ran. A migration that fails
/// with 42704 or a class-40 state (a race with another database's migration over a
/// cluster-wide role) runs again, at most three times in all. Returns how many ran.
int migrate(const std::string& postgres_url, std::span<const Migration> migrations,
            const std::function<void(std::string_view name)>& on_applied = {});

}  // namespace fraud::store
