#include "ops/environment.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string_view>

namespace fraud::ops {

Environment process_environment() {
  Environment env;
  for (char** entry = ::environ; *entry; ++entry) {
    std::string_view variable = *entry;
    auto equals = variable.find('=');
    if (equals != std::string_view::npos)
      env.emplace(std::string(variable.substr(0, equals)), std::string(variable.substr(equals + 1)));
  }
  return env;
}

std::optional<std::string> read_secret_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string secret_from_file(const std::string& variable, const std::string& path) {
  auto secret = read_secret_file(path);
  if (!secret) throw std::runtime_error(variable + ": the file '" + path + "' cannot be read");
  return *secret;
}

std::optional<std::string> environment_setting(const std::string& name) {
  if (const char* file = std::getenv((name + "_FILE").c_str()); file && *file)
    return secret_from_file(name + "_FILE", file);
  if (const char* value = std::getenv(name.c_str()); value && *value) return std::string(value);
  return std::nullopt;
}

std::map<std::string, std::string> kafka_properties(const Environment& env) {
  static constexpr std::string_view kPrefix = "FRAUD_KAFKA_PROPERTIES_";
  std::map<std::string, std::string> properties;
  for (const auto& [variable, given] : env) {
    if (!variable.starts_with(kPrefix)) continue;
    std::string name = variable.substr(kPrefix.size());
    std::string value = given;
    if (name.ends_with("_FILE")) {
      name.resize(name.size() - 5);
      value = secret_from_file(variable, given);
    }
    for (auto& c : name) c = c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    properties[name] = value;
  }
  return properties;
}

}  // namespace fraud::ops
