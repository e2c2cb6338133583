#include "console/sign_on.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <simdjson.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "console/tokens.h"
#include "events/time.h"
#include "ops/log.h"

namespace fraud::console {

namespace {

constexpr std::size_t kLongestToken = std::size_t{16} * 1024;
constexpr std::size_t kLongestDocument = std::size_t{1024} * 1024;
constexpr auto kUnknownKeyPause = std::chrono::seconds(30);
constexpr auto kKeysLifetime = std::chrono::minutes(15);

/// Base64url without padding (RFC 7515 §2), strictly: nothing for any other character.
std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string bytes;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
    if (value < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return bytes;
}

using Bignum = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

Bignum bignum(const std::string& bytes) {
  return {BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), nullptr),
          BN_free};
}

/// An RSA public key from its modulus and exponent.
std::shared_ptr<EVP_PKEY> rsa_key(const std::string& modulus, const std::string& exponent) {
  auto n = bignum(modulus), e = bignum(exponent);
  std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)> build(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!n || !e || !build || OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return nullptr;
  std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)> params(OSSL_PARAM_BLD_to_param(build.get()), OSSL_PARAM_free);
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> context(
      EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* key = nullptr;
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1 ||
      EVP_PKEY_fromdata(context.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return nullptr;
  return {key, EVP_PKEY_free};
}

bool rs256_valid(EVP_PKEY* key, std::string_view signed_text, const std::string& signature) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  return context && EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) == 1 &&
         EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size()) == 1;
}

std::optional<std::string> text_field(simdjson::dom::element object, std::string_view name) {
  std::string_view value;
  if (object[name].get(value) != simdjson::SUCCESS) return std::nullopt;
  return std::string(value);
}

/// A name the audit can hold as it is: 1–128 printable characters, no space.
bool plain_name(const std::string& name) {
  return !name.empty() && name.size() <= 128 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

/// Whether the claim (a string or an array of strings) holds `wanted`.
bool claim_holds(simdjson::dom::element claim, const std::string& wanted) {
  std::string_view one;
  if (claim.get(one) == simdjson::SUCCESS) return one == wanted;
  simdjson::dom::array many;
  if (claim.get(many) != simdjson::SUCCESS) return false;
  for (auto item : many)
    if (item.get(one) == simdjson::SUCCESS && one == wanted) return true;
  return false;
}

/// The claims' verdict, once the signature holds.
TokenVerdict check_claims(simdjson::dom::element claims, const OidcSettings& settings, events::Timestamp now) {
  auto refused = [](std::string why) { return TokenVerdict{std::nullopt, std::move(why), {}}; };
  if (text_field(claims, "iss") != settings.issuer) return refused("issued by another issuer");
  auto audience = claims["aud"];
  if (audience.error() || !claim_holds(audience.value_unsafe(), settings.audience))
    return refused("meant for another audience");
  double expires = 0, not_before = 0;
  double seconds_now = static_cast<double>(now) / 1e6, leeway = static_cast<double>(settings.leeway.count());
  if (claims["exp"].get(expires) != simdjson::SUCCESS) return refused("has no expiry");
  if (seconds_now >= expires + leeway) return refused("expired");
  auto nbf = claims["nbf"];
  if (!nbf.error() && nbf.get(not_before) != simdjson::SUCCESS) return refused("its nbf is not a time");
  if (!nbf.error() && seconds_now + leeway < not_before) return refused("not valid yet");
  auto name = text_field(claims, settings.name_claim);
  if (!name || !plain_name(*name)) return refused("names no analyst in claim '" + settings.name_claim + "'");
  auto role = claims[settings.role_claim];
  if (!role.error() && claim_holds(role.value_unsafe(), settings.lead_value))
    return {cases::Analyst{*name, cases::Role::lead}, {}, {}};
  if (!role.error() && claim_holds(role.value_unsafe(), settings.analyst_value))
    return {cases::Analyst{*name, cases::Role::analyst}, {}, {}};
  return refused("gives no console role in claim '" + settings.role_claim + "'");
}

}  // namespace

SigningKeys SigningKeys::parse(std::string_view jwks) {
  simdjson::dom::parser parser;
  simdjson::dom::array keys;
  if (parser.parse(jwks.data(), jwks.size()).get_object()["keys"].get(keys) != simdjson::SUCCESS)
    throw std::runtime_error("the JWKS is not a JSON object with a \"keys\" array");
  SigningKeys result;
  for (auto key : keys) {
    auto kid = text_field(key, "kid");
    auto use = text_field(key, "use");
    auto alg = text_field(key, "alg");
    if (text_field(key, "kty") != "RSA" || !kid || (use && *use != "sig") || (alg && *alg != "RS256")) continue;
    auto n = text_field(key, "n"), e = text_field(key, "e");
    auto modulus = n ? base64url_decode(*n) : std::nullopt;
    auto exponent = e ? base64url_decode(*e) : std::nullopt;
    auto public_key = modulus && exponent ? rsa_key(*modulus, *exponent) : nullptr;
    // One bad key must not cost the good ones (nor stop a rotation): it is skipped, and said.
    if (!public_key || EVP_PKEY_get_bits(public_key.get()) < 2048) {
      ops::log::warn("a key the sign-on provider publishes is skipped",
                     {{"kid", *kid}, {"why", public_key ? "shorter than 2048 bits" : "not an RSA public key"}});
      continue;
    }
    result.keys_[*kid] = public_key;
  }
  return result;
}

EVP_PKEY* SigningKeys::find(const std::string& kid) const {
  auto found = keys_.find(kid);
  return found == keys_.end() ? nullptr : found->second.get();
}

TokenVerdict verify_token(std::string_view token, const SigningKeys& keys, const OidcSettings& settings,
                          events::Timestamp now) {
  auto refused = [](std::string why) { return TokenVerdict{std::nullopt, std::move(why), {}}; };
  auto first = token.find('.'), last = token.rfind('.');
  if (token.size() > kLongestToken || first == std::string_view::npos || first == last ||
      token.find('.', first + 1) != last)
    return refused("not a signed JWT");
  auto header_text = base64url_decode(token.substr(0, first));
  auto claims_text = base64url_decode(token.substr(first + 1, last - first - 1));
  auto signature = base64url_decode(token.substr(last + 1));
  if (!header_text || !claims_text || !signature) return refused("not base64url");
  simdjson::dom::parser header_parser, claims_parser;
  simdjson::dom::element header, claims;
  if (header_parser.parse(*header_text).get(header) != simdjson::SUCCESS || !header.is_object())
    return refused("its header is not a JSON object");
  if (text_field(header, "alg") != "RS256") return refused("not signed with RS256");
  if (!header["crit"].error()) return refused("names critical extensions");
  auto kid = text_field(header, "kid");
  EVP_PKEY* key = kid ? keys.find(*kid) : nullptr;
  if (!key) return {std::nullopt, "signed with a key the provider does not publish", kid.value_or("")};
  if (!rs256_valid(key, token.substr(0, last), *signature)) return refused("its signature does not hold");
  if (claims_parser.parse(*claims_text).get(claims) != simdjson::SUCCESS || !claims.is_object())
    return refused("its claims are not a JSON object");
  return check_claims(claims, settings, now);
}

namespace {

std::size_t append_body(char* data, std::size_t size, std::size_t count, void* body) {
  auto& text = *static_cast<std::string*>(body);
  if (text.size() + size * count > kLongestDocument) return 0;  // ends the transfer with an error
  text.append(data, size * count);
  return size * count;
}

/// Whether `url` may be fetched: https, or http to this machine's loopback address; never
/// with a user name or password in it (which would also hide the real host from a prefix check).
bool fetchable(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> parsed(curl_url(), curl_url_cleanup);
  if (!parsed || curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return false;
  auto part = [&](CURLUPart which) {
    char* text = nullptr;
    if (curl_url_get(parsed.get(), which, &text, 0) != CURLUE_OK || !text) return std::string();
    std::string value(text);
    curl_free(text);
    return value;
  };
  if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty()) return false;
  auto scheme = part(CURLUPART_SCHEME), host = part(CURLUPART_HOST);
  return scheme == "https" || (scheme == "http" && (host == "127.0.0.1" || host == "localhost" || host == "[::1]"));
}

}  // namespace

std::string fetch_over_https(const std::string& url) {
  static const bool ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!fetchable(url)) throw std::runtime_error(url + ": the provider's documents are fetched over https only");
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(ready ? curl_easy_init() : nullptr, curl_easy_cleanup);
  if (!curl) throw std::runtime_error(url + ": libcurl did not start");
  std::string body;
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);  // worker threads: no SIGALRM for timeouts
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  auto result = curl_easy_perform(curl.get());
  if (result != CURLE_OK) throw std::runtime_error(url + ": " + curl_easy_strerror(result));
  return body;
}

OidcSignOn::OidcSignOn(OidcSettings settings, Fetch fetch) : settings_(std::move(settings)), fetch_(std::move(fetch)) {
  if (settings_.issuer.empty() || settings_.audience.empty())
    throw std::runtime_error("sign-on needs the provider's issuer and this console's audience");
  jwks_url_ = settings_.jwks_url.empty() ? jwks_url() : settings_.jwks_url;
  keys_ = std::make_shared<const SigningKeys>(SigningKeys::parse(fetch_(jwks_url_)));
  if (keys_->size() == 0) throw std::runtime_error(jwks_url_ + ": the provider publishes no RS256 signing key");
  fetched_at_ = Clock::now();  // tried_at_ stays long past: a key rotated just after start is fetched
}

/// From the discovery document (OpenID Connect Discovery §4), whose issuer must be the one
/// configured (§4.3).
std::string OidcSignOn::jwks_url() const {
  auto base = settings_.issuer;
  if (!base.empty() && base.back() == '/') base.pop_back();
  auto url = base + "/.well-known/openid-configuration";
  auto text = fetch_(url);
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  if (parser.parse(text).get(document) != simdjson::SUCCESS || !document.is_object())
    throw std::runtime_error(url + ": not a JSON object");
  if (text_field(document, "issuer") != settings_.issuer)
    throw std::runtime_error(url + ": names another issuer than " + settings_.issuer);
  auto jwks = text_field(document, "jwks_uri");
  if (!jwks) throw std::runtime_error(url + ": has no jwks_uri");
  return *jwks;
}

std::shared_ptr<const SigningKeys> OidcSignOn::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

std::size_t OidcSignOn::key_count() const { return keys()->size(); }

void OidcSignOn::refresh(Clock::duration after) const {
  {
    std::lock_guard lock(mutex_);
    if (fetching_ || Clock::now() - tried_at_ < after) return;
    fetching_ = true;
    tried_at_ = Clock::now();
  }
  std::shared_ptr<const SigningKeys> fresh;
  std::string error;
  try {
    fresh = std::make_shared<const SigningKeys>(SigningKeys::parse(fetch_(jwks_url_)));
    if (fresh->size() == 0) error = "the provider publishes no RS256 signing key";
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    std::lock_guard lock(mutex_);
    fetching_ = false;  // before anything else can throw: a later refresh must not be shut out
    if (error.empty()) {
      keys_ = fresh;
      fetched_at_ = Clock::now();
    }
  }
  if (error.empty())
    ops::log::info("the sign-on provider's keys were fetched again", {{"keys", std::to_string(fresh->size())}});
  else
    ops::log::warn("the sign-on provider's keys could not be fetched; the console keeps those it had",
                   {{"error", error}});
}

std::optional<cases::Analyst> OidcSignOn::authenticate(std::string_view authorization) const {
  auto bearer = bearer_token(authorization);
  if (!bearer) return std::nullopt;
  auto token = *bearer;
  {
    std::unique_lock lock(mutex_);
    bool stale = Clock::now() - fetched_at_ >= kKeysLifetime;
    lock.unlock();
    if (stale) refresh(kUnknownKeyPause);
  }
  auto verdict = verify_token(token, *keys(), settings_, events::wall_clock_now());
  if (!verdict.unknown_kid.empty()) {
    refresh(kUnknownKeyPause);
    verdict = verify_token(token, *keys(), settings_, events::wall_clock_now());
  }
  if (!verdict.analyst) ops::log::info("a sign-on token was refused", {{"reason", verdict.refusal}});
  return verdict.analyst;
}

}  // namespace fraud::console
