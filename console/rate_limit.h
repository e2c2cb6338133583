#pragma once
// Requests per analyst, bounded: a token bucket each, so that a stolen token or a runaway
// script cannot flood the desk (and the database behind it) while others work. A burst of
// `burst` requests, then `per_second`.

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace fraud::console {

class RateLimits {
 public:
  using Clock = std::chrono::steady_clock;
  RateLimits(double per_second, double burst) : per_second_(per_second), burst_(burst) {}

  /// Whether `who` may make a request at `now`; takes one from their bucket if so. Safe to
  /// call from several threads.
  bool allow(const std::string& who, Clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    Clock::time_point filled;
  };
  double per_second_, burst_;
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace fraud::console
