#pragma once
// What an analyst reads and does to cases (migrations/0013, 0015, 0019): the queue, a case with
// its events, alerts, comments, audit and the account's recent transactions, assignment,
// comments, and closing with a disposition that labels its transactions for the backtest.
// Each change is one call of a function of those migrations, which checks the login's role,
// writes its audit row and any labels in the same statement: the roles fraud_console and
// fraud_console_lead may call those and read, nothing else. Reads come back as JSON that
// PostgreSQL builds.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "cases/account_links.h"
#include "cases/analyst.h"

namespace fraud::cases {

enum class Disposition { fraud, legitimate, unsure };

/// "fraud", "legitimate" or "unsure"; nothing for any other text.
std::optional<Disposition> parse_disposition(std::string_view text);
const char* to_string(Disposition disposition);

/// A change the case's state does not allow (closing a closed case, or one that changed since
/// it was shown), or a case that does not exist.
class CaseRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The case (or list entry) asked for does not exist.
class CaseNotFound : public CaseRefused {
 public:
  using CaseRefused::CaseRefused;
};

/// An argument the database refuses: an empty analyst, a disposition or list name it does not know, …
class CaseInvalid : public CaseRefused {
 public:
  using CaseRefused::CaseRefused;
};

/// A change the analyst's role may not make (the database's check, by the desk's login).
class NotPermitted : public CaseRefused {
 public:
  using CaseRefused::CaseRefused;
};

/// A change that lowers the bank's decisions, refused as a direct change: it is proposed, and
/// made when a second lead approves it (cases/proposal_desk.h).
class NeedsSecondLead : public CaseRefused {
 public:
  using CaseRefused::CaseRefused;
};

/// An idempotency key used before for another request.
class KeyReused : public CaseRefused {
 public:
  using CaseRefused::CaseRefused;
};

/// The database was too busy to answer in time (a lock or statement timeout): try again.
class DeskBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClosedCase {
  std::int64_t case_id = 0;
  std::size_t labelled = 0;  ///< transactions labelled by this close (none for unsure)
};

/// Which cases the queue shows; an empty field does not filter.
struct QueueFilter {
  std::string state;      ///< open, assigned, closed, or active (open or assigned)
  std::string decision;   ///< review or block
  std::string rule;       ///< a rule that fired on one of its events
  int min_age_hours = 0;  ///< only cases opened at least this long ago (0: any), to find those waiting too long
  int limit = 100;
};

/// The seam between the console's API and the database (fakes in unit tests).
class Cases {
 public:
  virtual ~Cases() = default;
  /// {"cases": [...]}, most recent activity first.
  virtual std::string queue(const QueueFilter& filter) = 0;
  /// The case with its events, their alerts, the account's recent transactions and its
  /// activity over the 30 days before the case's last event; nothing when there is no such case.
  virtual std::optional<std::string> find(std::int64_t case_id) = 0;
  /// Assigns an open or assigned case to `assignee`: an analyst only to themself.
  virtual void assign(std::int64_t case_id, const std::string& assignee, const Change& change) = 0;
  /// Closes the case if it is still at `version`, the one the analyst was shown.
  virtual ClosedCase close(std::int64_t case_id, int version, Disposition disposition, const Change& change) = 0;
  /// Adds a comment to a case, closed or not; returns its id.
  virtual std::int64_t comment(std::int64_t case_id, const std::string& body, const Change& change) = 0;
  /// Per live rule over the last `days` days: its hits, how many of those the labels call
  /// fraud or legitimate, its precision against them, and its hits per day.
  virtual std::string rule_performance(int days) = 0;
  /// The other accounts that shared the case's account's cards, devices, IP addresses and
  /// payees in the query's period (cases/account_links.h); CaseNotFound when there is no such
  /// case, DeskBusy past the query's time budget.
  virtual std::string links(std::int64_t case_id, const LinkQuery& query) = 0;
};

class CaseDesk : public Cases {
 public:
  explicit CaseDesk(DeskLogins logins) : logins_(std::move(logins)) {}

  std::string queue(const QueueFilter& filter) override;
  std::optional<std::string> find(std::int64_t case_id) override;
  void assign(std::int64_t case_id, const std::string& assignee, const Change& change) override;
  /// Closes an open or assigned case still at `version`. Fraud and legitimate label each of
  /// its transactions that has no case label yet (source 'case', with the case and the
  /// analyst); unsure labels nothing. A closed case stays closed: a later event opens a new case.
  ClosedCase close(std::int64_t case_id, int version, Disposition disposition, const Change& change) override;
  std::int64_t comment(std::int64_t case_id, const std::string& body, const Change& change) override;
  std::string rule_performance(int days) override;
  std::string links(std::int64_t case_id, const LinkQuery& query) override;  // cases/account_links.cpp

 private:
  DeskLogins logins_;
};

}  // namespace fraud::cases
