#pragma once
// Structured logs: one JSON object a line on stderr. Carries ids, never event payloads
// (they are personal data).

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace fraud::ops::log {

enum class Level { debug, info, warn, error };

/// Sets the lowest level written; "debug", "info", "warn" or "error".
void set_level(std::string_view level);

using Fields = std::initializer_list<std::pair<std::string_view, std::string>>;

/// Writes one record if `level` is enabled. Thread-safe; a line is written whole.
void write(Level level, std::string_view message, Fields fields = {});

inline void debug(std::string_view m, Fields f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, Fields f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, Fields f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, Fields f = {}) { write(Level::error, m, f); }

}  // namespace fraud::ops::log
