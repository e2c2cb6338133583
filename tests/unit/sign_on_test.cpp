// The provider's tokens (console/sign_on.h), checked without a provider: keys made here, tokens
// signed here, and every way a token can be wrong. The real provider is in
// tests/integration/sign_on_test.cpp.
#include "console/sign_on.h"

#include <doctest/doctest.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace fraud;
using namespace fraud::console;

namespace {

constexpr events::Timestamp kNow = 1'796'000'000'000'000;  // microseconds
constexpr std::int64_t kNowSeconds = kNow / 1'000'000;

std::string base64url(const std::string& bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string text;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) text += kAlphabet[(buffer >> (bits -= 6)) & 0x3f];
  }
  if (bits > 0) text += kAlphabet[(buffer << (6 - bits)) & 0x3f];
  return text;
}

/// An RSA key of `bits`, and the JWKS entry of its public half.
struct TestKey {
  std::shared_ptr<EVP_PKEY> key;
  std::string kid;

  explicit TestKey(std::string id, unsigned bits = 2048) : key(EVP_RSA_gen(bits), EVP_PKEY_free), kid(std::move(id)) {
    REQUIRE(key);
  }
  std::string jwk() const {
    return R"({"kty":"RSA","use":"sig","alg":"RS256","kid":")" + kid + R"(","n":")" + part(OSSL_PKEY_PARAM_RSA_N) +
           R"(","e":")" + part(OSSL_PKEY_PARAM_RSA_E) + R"("})";
  }
  std::string sign(const std::string& text) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    std::size_t length = 0;
    REQUIRE(EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1);
    REQUIRE(EVP_DigestSign(context.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(text.data()),
                           text.size()) == 1);
    std::string signature(length, '\0');
    REQUIRE(EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                           reinterpret_cast<const unsigned char*>(text.data()), text.size()) == 1);
    signature.resize(length);
    return signature;
  }
  /// A compact JWT of `claims`, signed by this key under `header`.
  std::string token(const std::string& claims, std::string header = "") const {
    if (header.empty()) header = R"({"alg":"RS256","typ":"at+jwt","kid":")" + kid + R"("})";
    auto text = base64url(header) + "." + base64url(claims);
    return text + "." + base64url(sign(text));
  }

 private:
  std::string part(const char* name) const {
    BIGNUM* number = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key.get(), name, &number) == 1);
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(number)), '\0');
    BN_bn2bin(number, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(number);
    return base64url(bytes);
  }
};

OidcSettings settings() {
  OidcSettings s;
  s.issuer = "https://idp.bank.example";
  s.audience = "urn:fraud-console";
  return s;
}

std::string claims(const std::string& extra = R"("roles":"analyst")", std::int64_t expires = kNowSeconds + 300) {
  return R"({"iss":"https://idp.bank.example","aud":["urn:fraud-console","other"],"exp":)" + std::to_string(expires) +
         R"(,"preferred_username":"alice",)" + extra + "}";
}

const TestKey& provider_key() {
  static const TestKey key("k1");
  return key;
}

SigningKeys keys_of(const std::vector<const TestKey*>& keys) {
  std::string jwks = R"({"keys":[)";
  for (std::size_t i = 0; i < keys.size(); ++i) jwks += (i ? "," : "") + keys[i]->jwk();
  return SigningKeys::parse(jwks + "]}");
}

TokenVerdict verify(const std::string& token) {
  return verify_token(token, keys_of({&provider_key()}), settings(), kNow);
}

}  // namespace

TEST_CASE("a provider's token names its analyst and role") {
  auto verdict = verify(provider_key().token(claims()));
  REQUIRE(verdict.analyst);
  CHECK(verdict.analyst->name == "alice");
  CHECK(verdict.analyst->role == cases::Role::analyst);
  // Groups as an array: lead wins over analyst.
  auto lead = verify(provider_key().token(claims(R"("roles":["staff","analyst","lead"])")));
  REQUIRE(lead.analyst);
  CHECK(lead.analyst->role == cases::Role::lead);
  // Within the leeway of an expiry just past.
  CHECK(verify(provider_key().token(claims(R"("roles":"analyst")", kNowSeconds - 30))).analyst);
}

TEST_CASE("a token is refused when its signature, issuer, audience, time or claims do not hold") {
  const auto& key = provider_key();
  TestKey stranger("k1");  // same key id, another key
  auto good = key.token(claims());
  auto tampered = good;
  auto& changed = tampered[good.find('.') + 5];  // a claim's byte changed after signing
  changed = changed == 'A' ? 'B' : 'A';
  auto header = base64url(R"({"alg":"none","kid":"k1"})");
  auto unsigned_token = header + "." + base64url(claims()) + ".";
  struct Case {
    const char* what;
    std::string token;
    std::string refusal;
  };
  std::vector<Case> cases = {
      {"tampered", tampered, "its signature does not hold"},
      {"another key under the provider's key id", stranger.token(claims()), "its signature does not hold"},
      {"alg none", unsigned_token, "not signed with RS256"},
      {"HS256", key.token(claims(), R"({"alg":"HS256","kid":"k1"})"), "not signed with RS256"},
      {"unknown key id", key.token(claims(), R"({"alg":"RS256","kid":"k9"})"),
       "signed with a key the provider does not publish"},
      {"no key id", key.token(claims(), R"({"alg":"RS256"})"), "signed with a key the provider does not publish"},
      {"critical extension", key.token(claims(), R"({"alg":"RS256","kid":"k1","crit":["b64"]})"),
       "names critical extensions"},
      {"expired", key.token(claims(R"("roles":"analyst")", kNowSeconds - 61)), "expired"},
      {"no expiry",
       key.token(R"({"iss":"https://idp.bank.example","aud":"urn:fraud-console",)"
                 R"("preferred_username":"alice","roles":"analyst"})"),
       "has no expiry"},
      {"nbf not a time", key.token(claims(R"("roles":"analyst","nbf":"soon")")), "its nbf is not a time"},
      {"not yet valid", key.token(claims(R"("roles":"analyst","nbf":)" + std::to_string(kNowSeconds + 120))),
       "not valid yet"},
      {"another issuer",
       key.token(R"({"iss":"https://idp.bank.example/","aud":"urn:fraud-console","exp":)" +
                 std::to_string(kNowSeconds + 300) + R"(,"preferred_username":"alice","roles":"analyst"})"),
       "issued by another issuer"},
      {"another audience",
       key.token(R"({"iss":"https://idp.bank.example","aud":"urn:payments","exp":)" +
                 std::to_string(kNowSeconds + 300) + R"(,"preferred_username":"alice","roles":"analyst"})"),
       "meant for another audience"},
      {"no role", key.token(claims(R"("groups":["lead"])")), "gives no console role in claim 'roles'"},
      {"a role the console does not know", key.token(claims(R"("roles":"admin")")),
       "gives no console role in claim 'roles'"},
      {"a name with a space",
       key.token(R"({"iss":"https://idp.bank.example","aud":"urn:fraud-console","exp":)" +
                 std::to_string(kNowSeconds + 300) + R"(,"preferred_username":"a b","roles":"lead"})"),
       "names no analyst in claim 'preferred_username'"},
      {"not a JWT", "abc.def", "not a signed JWT"},
      {"four parts", good + ".x", "not a signed JWT"},
      {"padding", good + "=", "not base64url"},
  };
  for (const auto& c : cases) {
    CAPTURE(std::string(c.what));
    auto verdict = verify(c.token);
    CHECK_FALSE(verdict.analyst);
    if (!c.refusal.empty()) CHECK(verdict.refusal == c.refusal);
  }
}

TEST_CASE("a JWKS gives the provider's RS256 keys and refuses what cannot be a key") {
  TestKey other("k2");
  auto keys = keys_of({&provider_key(), &other});
  CHECK(keys.size() == 2);
  CHECK(keys.find("k2") != nullptr);
  CHECK(keys.find("k3") == nullptr);
  // Keys for encryption or other algorithms are skipped, not refused.
  CHECK(SigningKeys::parse(R"({"keys":[{"kty":"EC","kid":"e1","crv":"P-256","x":"AA","y":"AA"},)"
                           R"({"kty":"RSA","use":"enc","kid":"r1","n":"AQAB","e":"AQAB"}]})")
            .size() == 0);
  CHECK_THROWS_WITH(SigningKeys::parse("[]"), "the JWKS is not a JSON object with a \"keys\" array");
  // A short or malformed key is skipped, and costs the good ones nothing.
  TestKey short_key("k4", 1024);
  auto mixed = keys_of({&short_key, &other});
  CHECK(mixed.size() == 1);
  CHECK(mixed.find("k4") == nullptr);
  CHECK(SigningKeys::parse(R"({"keys":[{"kty":"RSA","kid":"k5","n":"*","e":"AQAB"}]})").size() == 0);
}

TEST_CASE("the provider's keys are fetched again for a key id not seen, at most every 30 seconds") {
  TestKey first("k1"), rotated("k2");
  int fetches = 0;
  std::string published = R"({"keys":[)" + first.jwk() + "]}";
  OidcSignOn sign_on(
      [] {
        auto s = settings();
        s.jwks_url = "https://idp.bank.example/jwks";
        return s;
      }(),
      [&](const std::string& url) {
        if (url != "https://idp.bank.example/jwks") throw std::runtime_error("unexpected " + url);
        ++fetches;
        return published;
      });
  CHECK(fetches == 1);
  auto far = [](const TestKey& key) { return "Bearer " + key.token(claims(R"("roles":"analyst")", 4'000'000'000)); };
  CHECK(sign_on.authenticate(far(first)));
  CHECK(fetches == 1);
  published = R"({"keys":[)" + first.jwk() + "," + rotated.jwk() + "]}";  // the provider rotates
  CHECK(sign_on.authenticate(far(rotated)));
  CHECK(fetches == 2);
  // A key id nobody publishes does not make it fetch again within 30 s.
  CHECK_FALSE(sign_on.authenticate("Bearer " + first.token(claims(), R"({"alg":"RS256","kid":"k7"})")));
  CHECK(fetches == 2);
  CHECK_FALSE(sign_on.authenticate(far(first).substr(1)));        // not "Bearer "
  CHECK(sign_on.authenticate("bearer " + far(first).substr(7)));  // the scheme in any case
}

TEST_CASE("sign-on does not start without the provider's keys or its discovery naming the issuer") {
  auto fetch = [](std::string document) { return [document](const std::string&) { return document; }; };
  CHECK_THROWS_WITH(OidcSignOn(settings(), fetch(R"({"issuer":"https://evil.example","jwks_uri":"x"})")),
                    "https://idp.bank.example/.well-known/openid-configuration: names another issuer than "
                    "https://idp.bank.example");
  auto s = settings();
  s.jwks_url = "https://idp.bank.example/jwks";
  CHECK_THROWS_WITH(OidcSignOn(s, fetch(R"({"keys":[]})")),
                    "https://idp.bank.example/jwks: the provider publishes no RS256 signing key");
  for (const char* url :
       {"http://idp.bank.example/jwks", "http://localhost:@idp.bank.example/jwks", "http://127.0.0.1.evil.example/jwks",
        "https://user:secret@idp.bank.example/jwks", "file:///etc/passwd"})
    CHECK_THROWS_WITH(fetch_over_https(url),
                      (std::string(url) + ": the provider's documents are fetched over https only").c_str());
}
