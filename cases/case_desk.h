#pragma once
// What an analyst does to a case (migrations/0013): close it with a disposition, which labels
// its transactions for the backtest. Each change is one transaction with its audit row, run
// as a member of fraud_console, so the console that calls it can rewrite neither the labels
// nor the audit.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fraud::cases {

enum class Disposition { fraud, legitimate, unsure };

/// "fraud", "legitimate" or "unsure"; nothing for any other text.
std::optional<Disposition> parse_disposition(std::string_view text);
const char* to_string(Disposition disposition);

/// A change the case's state does not allow (closing a closed case), or a case that does not exist.
class CaseRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClosedCase {
  std::int64_t case_id = 0;
  std::size_t labelled = 0;  ///< transactions labelled by this close (none for unsure)
};

class CaseDesk {
 public:
  /// `url`: a PostgreSQL URL of a login role in fraud_console.
  explicit CaseDesk(std::string url) : url_(std::move(url)) {}

  /// Closes an open or assigned case as `analyst`. Fraud and legitimate label each of its
  /// transactions that has no case label yet (source 'case', with the case and the analyst);
  /// unsure labels nothing. A closed case stays closed: a later event opens a new case.
  ClosedCase close(std::int64_t case_id, Disposition disposition, const std::string& analyst);

 private:
  std::string url_;
};

}  // namespace fraud::cases
