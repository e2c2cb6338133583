#pragma once
// SIGTERM and SIGINT as a flag the main loop polls: how every process of the project stops
// (finishing what it holds, then exiting 0), written once.

#include <atomic>

namespace fraud::ops {

/// Installs handlers for SIGTERM and SIGINT that set the returned flag. `on_first`, when
/// given, runs inside the handler at the first signal only, so it must be async-signal-safe
/// (fraud-consumer arms the alarm that bounds its shutdown).
const std::atomic<bool>& stop_on_signals(void (*on_first)() = nullptr);

}  // namespace fraud::ops
