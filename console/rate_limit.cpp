#include "console/rate_limit.h"

#include <algorithm>

namespace fraud::console {

bool RateLimits::allow(const std::string& who, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto [it, added] = buckets_.try_emplace(who, Bucket{burst_, now});
  auto& bucket = it->second;
  auto elapsed = std::chrono::duration<double>(now - bucket.filled).count();
  bucket.tokens = std::min(burst_, bucket.tokens + std::max(0.0, elapsed) * per_second_);
  bucket.filled = std::max(bucket.filled, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

}  // namespace fraud::console
