#pragma once
// Who is asking: the console's analysts and their roles, from a tokens file that holds only
// SHA-256 digests of their bearer tokens (a leaked file gives no one a way in), one line each:
//
//   # name  role     sha256 of the token, hex
//   alice   analyst  2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//
// Roles are cases::Role (cases/analyst.h): what each may do, the database decides.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cases/analyst.h"

namespace fraud::console {

using cases::Analyst;
using cases::Role;

/// The SHA-256 of `text`, in lowercase hex.
std::string sha256_hex(std::string_view text);

class TokenBook {
 public:
  /// Reads a tokens file; throws std::runtime_error naming the file and line of a bad entry.
  static TokenBook load(const std::string& path);
  /// The same from text, `origin` naming it in errors.
  static TokenBook parse(std::string_view text, const std::string& origin);

  /// The analyst whose token an "Authorization: Bearer <token>" header carries, if any.
  /// Compares digests in constant time, every entry, so timing says nothing of which matched.
  std::optional<Analyst> authenticate(std::string_view authorization) const;

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Analyst analyst;
    std::string digest;  ///< 64 lowercase hex characters
  };
  std::vector<Entry> entries_;
};

}  // namespace fraud::console
