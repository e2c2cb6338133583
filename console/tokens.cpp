#include "console/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/algorithm/hex.hpp>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include "ops/file_stamp.h"
#include "ops/log.h"

namespace fraud::console {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  std::string hex;
  boost::algorithm::hex_lower(digest, digest + length, std::back_inserter(hex));
  return hex;
}

namespace {

bool is_digest(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

TokenBook TokenBook::parse(std::string_view text, const std::string& origin) {
  TokenBook book;
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    auto where = origin + ":" + std::to_string(number) + ": ";
    std::istringstream fields(line.substr(0, line.find('#')));
    std::string name, role, digest, expiry, extra;
    if (!(fields >> name)) continue;  // blank or a comment
    if (!(fields >> role >> digest) || (fields >> expiry && fields >> extra))
      throw std::runtime_error(where +
                               "expected three fields: name, role (analyst or lead), sha256 of the token; and "
                               "expires=YYYY-MM-DD or none");
    if (role != "analyst" && role != "lead")
      throw std::runtime_error(where + "role '" + role + "' is neither analyst nor lead");
    if (!is_digest(digest))
      throw std::runtime_error(where + "the third field is not a SHA-256 digest (64 lowercase hex characters)");
    for (const auto& entry : book.entries_) {
      if (entry.analyst.name == name) throw std::runtime_error(where + "'" + name + "' appears twice");
      if (entry.digest == digest)
        throw std::runtime_error(where + "'" + name + "' has the token of '" + entry.analyst.name + "'");
    }
    std::optional<events::Timestamp> expires;
    if (!expiry.empty()) {
      constexpr std::string_view kKey = "expires=";
      if (expiry.starts_with(kKey) && expiry.size() == kKey.size() + 10)
        expires = events::parse_rfc3339(expiry.substr(kKey.size()) + "T00:00:00Z");
      if (!expires)
        throw std::runtime_error(where + "the fourth field is expires=YYYY-MM-DD, the UTC day the token stops working");
    }
    book.entries_.push_back({{name, role == "lead" ? Role::lead : Role::analyst}, digest, expires});
  }
  return book;
}

TokenBook TokenBook::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(path + ": cannot be read");
  std::stringstream text;
  text << file.rdbuf();
  return parse(text.str(), path);
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  // The scheme is case-insensitive (RFC 9110).
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return std::nullopt;
  return authorization.substr(kScheme.size());
}

std::optional<Analyst> TokenBook::authenticate(std::string_view authorization, events::Timestamp now) const {
  auto token = bearer_token(authorization);
  if (!token) return std::nullopt;
  auto digest = sha256_hex(*token);
  std::optional<Analyst> found;
  const Entry* expired = nullptr;
  for (const auto& entry : entries_) {
    if (CRYPTO_memcmp(entry.digest.data(), digest.data(), digest.size()) != 0) continue;
    if (!entry.expires || now < *entry.expires) found = entry.analyst;
    else expired = &entry;
  }
  // An operator asked why an analyst is locked out sees it was the expiry, not a wrong token.
  if (!found && expired)
    ops::log::info("an expired token was refused",
                   {{"analyst", expired->analyst.name}, {"expired", events::format_rfc3339(*expired->expires)}});
  return found;
}

namespace {

/// What every token is checked against while the file does not load: made before it is
/// needed, so refusing cannot fail.
const auto kNobody = std::make_shared<const TokenBook>();

}  // namespace

TokenFile::TokenFile(std::string path)
    : path_(std::move(path)), stamp_(ops::FileStamp::of(path_)),
      book_(std::make_shared<const TokenBook>(TokenBook::load(path_))) {}

std::optional<Analyst> TokenFile::authenticate(std::string_view authorization) const {
  std::shared_ptr<const TokenBook> book;
  {
    std::lock_guard lock(mutex_);
    auto now = ops::FileStamp::of(path_);
    auto retry = failed_at && std::chrono::steady_clock::now() - *failed_at >= std::chrono::seconds(1);
    if (now != stamp_ || retry) {
      try {
        book_ = std::make_shared<const TokenBook>(TokenBook::load(path_));
        stamp_ = now;  // only once loaded: a failure is tried again
        failed_at.reset();
        ops::log::info("tokens file read again", {{"file", path_}, {"analysts", std::to_string(book_->size())}});
      } catch (const std::exception& e) {
        book_ = kNobody;
        if (!failed_at)
          ops::log::error("the tokens file does not load: every token is refused until it does",
                          {{"file", path_}, {"error", e.what()}});
        failed_at = std::chrono::steady_clock::now();
      }
    }
    book = book_;
  }
  return book->authenticate(authorization);
}

std::size_t TokenFile::size() const {
  std::lock_guard lock(mutex_);
  return book_->size();
}

}  // namespace fraud::console
