#pragma once
// Proof that the tests named after a guarantee can fail: a build made with
// -DFRAUD_MECHANISM_SWITCHES=ON (only scripts/test's "mechanisms" stage makes one) can turn a
// mechanism off through FRAUD_DISABLE_MECHANISM (dedup, fence, key_versions, relay_acks), and
// the tests named after it must then fail. In every other build, mechanism_disabled() is a
// constant false.

#include <cstdlib>
#include <string_view>

namespace fraud::ops {

inline bool mechanism_disabled([[maybe_unused]] std::string_view mechanism) {
#ifdef FRAUD_MECHANISM_SWITCHES
  static const std::string_view disabled = [] {
    const char* value = std::getenv("FRAUD_DISABLE_MECHANISM");
    return std::string_view(value ? value : "");
  }();
  return !disabled.empty() && disabled == mechanism;
#else
  return false;
#endif
}

}  // namespace fraud::ops
