#pragma once
// Checks the audit's hash chain (migrations/0021): every row sealed by the hash of the row
// before it and its own canonical text, numbered without a gap, the chain's head where its
// last row says. The canonical text is computed here from this binary's own copy of
// fraud_audit_canonical(), so a trigger or function replaced in the database to seal forged
// rows differently is caught too.

#include <cstdint>
#include <optional>
#include <string>

namespace fraud::cases {

/// A row of the chain, as `audit verify` prints and is given it: its number and hash in hex.
struct ChainLink {
  std::int64_t seq = 0;
  std::string hash;
};

/// "SEQ:HASH" as a link; nothing when it is not of that shape.
std::optional<ChainLink> parse_link(const std::string& text);

struct AuditVerdict {
  bool intact = false;
  std::int64_t rows = 0;
  ChainLink head;       ///< the last row's (seq 0 and the start's hash for an empty log)
  std::string problem;  ///< what broke where, when not intact
};

/// Verifies the chain through `url` (a login that may read audit_log and audit_chain). With
/// `known`, a link printed by an earlier run must still be in the chain as it was: a chain
/// rewritten and sealed again after a change passes every other check, but not that one.
AuditVerdict verify_audit_chain(const std::string& url, const std::optional<ChainLink>& known);

}  // namespace fraud::cases
