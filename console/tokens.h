#pragma once
// Who is asking: the console's analysts and their roles, from a tokens file that holds only
// SHA-256 digests of their bearer tokens (a leaked file gives no one a way in), one line each,
// with the UTC day a token stops working if it has one:
//
//   # name  role     sha256 of the token, hex                                          [expiry]
//   alice   analyst  2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae  expires=2027-03-01
//
// The console reads the file again when it changes, so a token is revoked by deleting its
// line, without a restart (TokenFile).
// Roles are cases::Role (cases/analyst.h): what each may do, the database decides.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cases/analyst.h"
#include "events/time.h"
#include "ops/file_stamp.h"

namespace fraud::console {

using cases::Analyst;
using cases::Role;

/// The SHA-256 of `text`, in lowercase hex.
std::string sha256_hex(std::string_view text);

/// The token of an "Authorization: Bearer <token>" header (the scheme in any case), if any.
std::optional<std::string_view> bearer_token(std::string_view authorization);

class TokenBook {
 public:
  /// Reads a tokens file; throws std::runtime_error naming the file and line of a bad entry.
  static TokenBook load(const std::string& path);
  /// The same from text, `origin` naming it in errors.
  static TokenBook parse(std::string_view text, const std::string& origin);

  /// The analyst whose token an "Authorization: Bearer <token>" header carries, if any and
  /// not expired at `now`. Compares digests in constant time, every entry, so timing says
  /// nothing of which matched.
  std::optional<Analyst> authenticate(std::string_view authorization, events::Timestamp now) const;
  /// The same now.
  std::optional<Analyst> authenticate(std::string_view authorization) const {
    return authenticate(authorization, events::wall_clock_now());
  }

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Analyst analyst;
    std::string digest;                        ///< 64 lowercase hex characters
    std::optional<events::Timestamp> expires;  ///< the first moment it no longer works
  };
  std::vector<Entry> entries_;
};

/// A tokens file, read again when it changed (ops::FileStamp: a file copied in with its old time
/// still counts).
/// A file that stops loading refuses every token, and is tried again each second, until it
/// loads (said in the log): a mistake while revoking one must not leave the revoked one
/// working. Safe to call from several threads.
class TokenFile {
 public:
  /// Reads the file; throws std::runtime_error when it does not load at start.
  explicit TokenFile(std::string path);

  std::optional<Analyst> authenticate(std::string_view authorization) const;
  std::size_t size() const;

 private:
  std::string path_;
  mutable std::mutex mutex_;
  mutable ops::FileStamp stamp_;  ///< of the file last loaded
  mutable std::shared_ptr<const TokenBook> book_;
  mutable std::optional<std::chrono::steady_clock::time_point> failed_at;  ///< the last load that failed
};

}  // namespace fraud::console
