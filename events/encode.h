#pragma once
// An Event back to plain-envelope JSON: how the transaction history stores each event, so
// that features and backtests can decode it again exactly as it was.

#include <string>

#include "events/event.h"

namespace fraud::events {

/// The event as a plain TransactionRecorded JSON object (the source, when there is one, as
/// "event_source"). Decoding the result yields an equal event.
std::string to_json(const Event& event);

}  // namespace fraud::events
