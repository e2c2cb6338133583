#include "tests/support/wait.h"

#include <fstream>
#include <sstream>
#include <thread>

namespace fraud::testing {

using namespace std::chrono_literals;

bool wait_until(std::chrono::seconds timeout, const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace fraud::testing
