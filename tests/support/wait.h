#pragma once
// Bounded waits, and reading what a child process wrote: no test sleeps to synchronise.

#include <chrono>
#include <functional>
#include <string>

namespace fraud::testing {

/// Polls `condition` every 100 ms until it holds or `timeout` passes; returns whether it held.
bool wait_until(std::chrono::seconds timeout, const std::function<bool()>& condition);

/// The text of a file, or empty.
std::string read_file(const std::string& path);

}  // namespace fraud::testing
