#pragma once
// What an analyst does to the runtime lists and the rule suppressions (migrations/0014,
// 0015): add an entry or a suppression, end one, see those in force. Each change is one call
// of a function of those migrations that bumps the lists' version (so every replica reloads
// them at its next batch) and writes its audit row. Nothing is deleted: ending an entry keeps
// what was in force, and when.

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
  /// Adds an entry as `analyst`; returns its id. Throws CaseInvalid for what the database refuses.
  virtual std::int64_t add(const NewListEntry& entry, const std::string& analyst) = 0;
  /// Ends an entry in force now, as `analyst`. Throws CaseNotFound when there is none such.
  virtual void end(std::int64_t entry_id, const std::string& analyst) = 0;
  /// Adds a suppression as `analyst`; returns its id. Throws CaseInvalid for what the database refuses.
  virtual std::int64_t suppress(const NewSuppression& suppression, const std::string& analyst) = 0;
  /// Ends a suppression in force now, as `analyst`. Throws CaseNotFound when there is none such.
  virtual void end_suppression(std::int64_t suppression_id, const std::string& analyst) = 0;
};

class ListDesk : public Lists {
 public:
  /// `url`: a PostgreSQL URL of a login role in fraud_console.
  explicit ListDesk(std::string url) : url_(std::move(url)) {}

  std::string in_force() override;
  std::int64_t add(const NewListEntry& entry, const std::string& analyst) override;
  void end(std::int64_t entry_id, const std::string& analyst) override;
  std::int64_t suppress(const NewSuppression& suppression, const std::string& analyst) override;
  void end_suppression(std::int64_t suppression_id, const std::string& analyst) override;

 private:
  std::string url_;
};

}  // namespace fraud::cases
