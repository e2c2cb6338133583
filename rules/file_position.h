#pragma once
// "file:line:column" of a place in a YAML file, as compilers and editors print it: the one
// form every error about a rule file or the configuration file starts with.

#include <string>

#include <yaml-cpp/yaml.h>

namespace fraud::rules {

/// `file`:line:column of `mark` (yaml-cpp counts from 0; people count from 1), `columns_in`
/// further along the line.
inline std::string file_position(const std::string& file, const YAML::Mark& mark, std::size_t columns_in = 0) {
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1 + columns_in);
}

}  // namespace fraud::rules
