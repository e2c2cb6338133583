#include "ops/stop_signal.h"

#include <csignal>

namespace fraud::ops {
namespace {

std::atomic<bool> stop_requested{false};
void (*first_stop)() = nullptr;

// Async-signal-safe only: a lock-free atomic and the caller's async-signal-safe hook.
extern "C" void request_stop(int) {
  if (!stop_requested.exchange(true) && first_stop) first_stop();
}

}  // namespace

const std::atomic<bool>& stop_on_signals(void (*on_first)()) {
  static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
  first_stop = on_first;
  std::signal(SIGTERM, request_stop);
  std::signal(SIGINT, request_stop);
  return stop_requested;
}

}  // namespace fraud::ops
