#pragma once
// Who asks the desk for a change: an analyst, by name and role, and the key that makes
// asking again safe. The console learns the name and role from the analyst's token; the
// database learns the role from the login the desk connects as (migrations/0019), and the
// key keeps a retried request from being applied twice.

#include <string>

namespace fraud::cases {

/// An analyst works cases and may assign one only to themself; a lead may also assign to
/// anyone and make the changes that lower the bank's decisions.
enum class Role { analyst, lead };
const char* to_string(Role role);

struct Analyst {
  std::string name;
  Role role = Role::analyst;
};

/// One change an analyst asks for. The same `idempotency_key` again, with the same request,
/// returns the first answer and changes nothing; with another request it is refused.
struct Change {
  Analyst by;
  std::string idempotency_key;
};

/// The desk's database logins: one in fraud_console for analysts' requests, one in
/// fraud_console_lead for leads'. Without a lead's, leads act with the analysts' login and
/// the database refuses what only a lead may do.
struct DeskLogins {
  std::string analyst_url, lead_url;
  const std::string& url_for(Role role) const {
    return role == Role::lead && !lead_url.empty() ? lead_url : analyst_url;
  }
};

/// Throws std::runtime_error, saying which, when the analysts' login may do a lead's part (a
/// member of fraud_console_lead, or a superuser: every analyst would act as a lead) or the
/// leads' login may not (every lead's change would be refused).
void check_logins(const DeskLogins& logins);

}  // namespace fraud::cases
