#pragma once
// RFC 3339 timestamps, the only time format the contract allows.

#include <optional>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::events {

/// Parses an RFC 3339 date-time with a `Z` or `±HH:MM` offset into microseconds since the
/// epoch (UTC). Fractions beyond microseconds are truncated. Nothing for anything else.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

/// Formats as RFC 3339 in UTC with microseconds ("2026-11-27T09:15:02.123000Z").
std::string format_rfc3339(Timestamp micros);

/// The wall clock, in microseconds since the epoch: for latency, logs and the dedup window,
/// never for ordering (it can step). rules/ never reads it: rules see event time only.
Timestamp wall_clock_now();

}  // namespace fraud::events
