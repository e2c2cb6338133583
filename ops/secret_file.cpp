#include "ops/secret_file.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace fraud::ops {

std::optional<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::optional<std::string> environment_setting(const std::string& name) {
  if (const char* file = std::getenv((name + "_FILE").c_str()); file && *file) {
    auto secret = read_secret_file(file);
    if (!secret) throw std::runtime_error(name + "_FILE: the file '" + file + "' cannot be read");
    return secret;
  }
  if (const char* value = std::getenv(name.c_str()); value && *value) return std::string(value);
  return std::nullopt;
}

}  // namespace fraud::ops
