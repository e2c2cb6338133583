#pragma once
// Sign-on through the bank's OpenID Connect provider: the console accepts the provider's
// access tokens (JWTs, RFC 9068) as bearer tokens. Each is checked against the provider's
// signing keys (its JWKS), its issuer, this console's audience, its expiry, and carries the
// analyst's name and role in claims the bank configures. The provider decides who may sign
// on and for how long; disabling a person there ends their access when their token expires.
//
// Only RS256 is accepted, with keys of 2048 bits or more: what every bank's provider offers,
// and no algorithm chosen by the token itself ("none", or HS256 keyed by a public key).

#include <openssl/evp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "cases/analyst.h"
#include "events/event.h"

namespace fraud::console {

/// What the console trusts of the provider (FRAUD_CONSOLE_OIDC_*, docs/CASES.md).
struct OidcSettings {
  std::string issuer;    ///< the tokens' `iss`, exactly
  std::string audience;  ///< must be one of the tokens' `aud`
  std::string jwks_url;  ///< empty: the `jwks_uri` of the issuer's discovery document
  std::string name_claim = "preferred_username";
  std::string role_claim = "roles";       ///< a string, or an array of strings (groups)
  std::string analyst_value = "analyst";  ///< the claim's value that makes an analyst
  std::string lead_value = "lead";        ///< and a lead (wins when both are present)
  std::chrono::seconds leeway{60};        ///< clock skew allowed on `exp` and `nbf`
};

/// The provider's RS256 signing keys, by key id, from a JWKS document.
class SigningKeys {
 public:
  /// Throws std::runtime_error when the document is no JWKS; keys of other types or uses are
  /// skipped, and so (with a warning) is an RSA key that is malformed or under 2048 bits.
  static SigningKeys parse(std::string_view jwks);
  /// The key `kid` names, or null.
  EVP_PKEY* find(const std::string& kid) const;
  std::size_t size() const { return keys_.size(); }

 private:
  std::map<std::string, std::shared_ptr<EVP_PKEY>> keys_;
};

/// Who a token names, or why it is refused (for the log: never the token itself).
struct TokenVerdict {
  std::optional<cases::Analyst> analyst;
  std::string refusal;
  std::string unknown_kid;  ///< set when the only fault is a key not among the keys given
};

/// Checks one compact JWT against `keys` and `settings` at `now` (microseconds since the
/// epoch). Pure: no clock, no network.
TokenVerdict verify_token(std::string_view token, const SigningKeys& keys, const OidcSettings& settings,
                          events::Timestamp now);

/// The text at `url`, or std::runtime_error naming it (the provider's documents).
using Fetch = std::function<std::string(const std::string& url)>;

/// GET by libcurl: https (or http to the loopback address only, for a provider on this
/// machine; no user or password in the URL), certificates verified, no redirects, 5 s, 1 MiB
/// at most.
std::string fetch_over_https(const std::string& url);

/// Bearer JWTs from the bank's provider. Its keys are fetched at start (the console does not
/// start without them), again when a token names a key not seen (the provider rotated; at
/// most once every 30 s, so forged key ids cannot make it hammer the provider) and when they
/// are 15 minutes old. A failed fetch keeps the keys it had. Safe from several threads; the
/// fetch holds no lock the other requests wait for.
class OidcSignOn {
 public:
  OidcSignOn(OidcSettings settings, Fetch fetch);

  /// The analyst an "Authorization: Bearer <jwt>" header names, if its token passes.
  std::optional<cases::Analyst> authenticate(std::string_view authorization) const;
  std::size_t key_count() const;

 private:
  using Clock = std::chrono::steady_clock;
  std::shared_ptr<const SigningKeys> keys() const;
  /// Fetches the keys again if none is under way and the last try was at least `after` ago.
  void refresh(Clock::duration after) const;
  std::string jwks_url() const;

  OidcSettings settings_;
  Fetch fetch_;
  std::string jwks_url_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const SigningKeys> keys_;
  mutable Clock::time_point fetched_at_, tried_at_;
  mutable bool fetching_ = false;
};

}  // namespace fraud::console
