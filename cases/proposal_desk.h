#pragma once
// Four eyes (migrations/0022): a change that lowers the bank's decisions (an allow entry, a
// suppression, ending a deny entry, closing a block case as legitimate) is refused as a
// direct change (NeedsSecondLead) and proposed instead; a lead other than the proposer
// approves it, and only then is it made, or rejects it. A proposal not decided within 24
// hours expires. Proposing, approving and rejecting are each audited.

#include <cstdint>
#include <string>

#include "cases/case_desk.h"

namespace fraud::cases {

/// The seam between the console's API and the database (fakes in unit tests).
class Proposals {
 public:
  virtual ~Proposals() = default;
  /// {"proposals": [...]}: those waiting for a decision and not expired, oldest first.
  virtual std::string pending() = 0;
  /// Proposes `action` (list.add, list.end, suppression.add, case.close) with `request`, a
  /// JSON object of its arguments; returns the proposal's id.
  virtual std::int64_t propose(const std::string& action, const std::string& request, const Change& change) = 0;
  /// Approves (making the change) or rejects a pending proposal, as a lead other than the
  /// proposer (who may only reject their own); returns the proposal as it is now, as JSON.
  virtual std::string decide(std::int64_t proposal_id, bool approve, const Change& change) = 0;
};

class ProposalDesk : public Proposals {
 public:
  explicit ProposalDesk(DeskLogins logins) : logins_(std::move(logins)) {}

  std::string pending() override;
  std::int64_t propose(const std::string& action, const std::string& request, const Change& change) override;
  std::string decide(std::int64_t proposal_id, bool approve, const Change& change) override;

 private:
  DeskLogins logins_;
};

}  // namespace fraud::cases
