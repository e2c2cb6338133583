#pragma once
// How long to wait before trying again after failures in a row: the consumer's claims and
// batches and the relay's batches all back off this one way.

#include <algorithm>
#include <chrono>

namespace fraud::ops {

/// A wait that doubles with each failure in a row, from `first` up to `cap`, and starts from
/// `first` again after a success. A value: each partition or batch keeps its own copy.
class Backoff {
 public:
  constexpr Backoff(std::chrono::milliseconds first, std::chrono::milliseconds cap) : first_(first), cap_(cap) {}

  /// One more failure: returns the wait before the next try.
  std::chrono::milliseconds fail() {
    wait_ = wait_.count() == 0 ? first_ : std::min(wait_ * 2, cap_);
    return wait_;
  }

  /// A success: the next failure waits `first` again.
  void reset() { wait_ = {}; }

  /// The wait the last failure set; zero while nothing has failed since the last success.
  std::chrono::milliseconds wait() const { return wait_; }
  bool backing_off() const { return wait_.count() > 0; }

 private:
  std::chrono::milliseconds first_, cap_, wait_{0};
};

}  // namespace fraud::ops
