#pragma once
// An Event back to plain-envelope JSON: how the transaction history stores each event, so
// that features and backtests can decode it again exactly as it was.

#include <cstdint>
#include <string>
#include <string_view>

#include "events/event.h"

namespace fraud::events {

/// The event as a plain TransactionRecorded JSON object (the source, when there is one, as
/// "event_source"). Decoding the result yields an equal event.
std::string to_json(const Event& event);

/// A 64-bit digest (FNV-1a) of `json`, an event's to_json(): equal for two copies of one
/// event whatever envelope carried them, different when any decoded field differs but
/// recorded_at. It tells an operator that a redelivered id came with other content; it is
/// never an identity. recorded_at is left out because it says when the bank's ledger recorded
/// the transaction, which a copy sent to POST /v1/decisions before recording cannot carry:
/// that copy and the one the outbox publishes later are one event with one content.
std::int64_t body_digest(std::string_view json);

}  // namespace fraud::events
