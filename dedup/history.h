#pragma once
// Reading the stored transaction history back, in event-time order, for backtests.

#include <functional>
#include <optional>
#include <string>

#include "events/event.h"

namespace fraud::dedup {

/// A stored event and its fraud label, when one was recorded in fraud_labels.
struct LabelledEvent {
  events::Event event;
  std::optional<bool> is_fraud;
};

/// Calls `visit` for every stored event with since <= occurred_at < until (microseconds since
/// the epoch), oldest first, streaming through a cursor so memory stays flat. Read-only.
void for_each_stored_event(const std::string& postgres_url, events::Timestamp since, events::Timestamp until,
                           const std::function<void(const LabelledEvent&)>& visit);

}  // namespace fraud::dedup
