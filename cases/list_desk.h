#pragma once
// What an analyst does to the runtime lists and the rule suppressions (migrations/0014,
// 0015, 0019): add an entry or a suppression, end one, see those in force. Each change is one
// call of a function of those migrations that checks the login's role, bumps the lists'
// version (so every replica reloads them at its next batch) and writes its audit row.
// Nothing is deleted: ending an entry keeps what was in force, and when.

#include <cstdint>
#include <optional>
#include <string>

#include "cases/case_desk.h"

namespace fraud::cases {

struct NewListEntry {
  std::string list, value, reason;
  std::optional<int> days;  ///< in force for this many days; none: until ended
};

/// One rule that does not fire for one account's events for a number of days.
struct NewSuppression {
  std::string rule, account, reason;
  int days = 14;
};

/// The seam between the console's API and the database (fakes in unit tests).
class Lists {
 public:
  virtual ~Lists() = default;
  /// {"entries": [...], "suppressions": [...]}: those in force now, newest first.
  virtual std::string in_force() = 0;
  /// Adds an entry; returns its id. Only a lead adds to an allow_ list.
  virtual std::int64_t add(const NewListEntry& entry, const Change& change) = 0;
  /// Ends an entry in force now. Only a lead ends one of a list that is not an allow_ list.
  /// Throws CaseNotFound when there is none such.
  virtual void end(std::int64_t entry_id, const Change& change) = 0;
  /// Adds a suppression (a lead's); returns its id.
  virtual std::int64_t suppress(const NewSuppression& suppression, const Change& change) = 0;
  /// Ends a suppression in force now. Throws CaseNotFound when there is none such.
  virtual void end_suppression(std::int64_t suppression_id, const Change& change) = 0;
};

class ListDesk : public Lists {
 public:
  explicit ListDesk(DeskLogins logins) : logins_(std::move(logins)) {}

  std::string in_force() override;
  std::int64_t add(const NewListEntry& entry, const Change& change) override;
  void end(std::int64_t entry_id, const Change& change) override;
  std::int64_t suppress(const NewSuppression& suppression, const Change& change) override;
  void end_suppression(std::int64_t suppression_id, const Change& change) override;

 private:
  DeskLogins logins_;
};

}  // namespace fraud::cases
