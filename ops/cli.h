#pragma once
// The command lines' one way to refuse: a message on stderr and an exit status, in one
// statement (instead of a comma operator after each `std::cerr <<`).

#include <iostream>
#include <string_view>

namespace fraud::ops {

/// Writes `message` to stderr and returns `status` (2: a usage error).
inline int refuse(std::string_view message, int status = 2) {
  std::cerr << message;
  return status;
}

}  // namespace fraud::ops
