#pragma once
// Secrets handed out as files (Kubernetes, Docker): a setting NAME may be given as
// NAME_FILE=/path instead, so that a password need not sit in the environment, where `ps e`
// and crash dumps show it. Every process reads them the same way.

#include <optional>
#include <string>

namespace fraud::ops {

/// The content of the secret file at `path`, without its final newlines; nothing when it
/// cannot be read.
std::optional<std::string> read_secret_file(const std::string& path);

/// The environment variable `name`, or the content of the file `name`_FILE names (which wins
/// when both are set); nothing when neither is set. Throws std::runtime_error naming the
/// variable and the file when the file cannot be read.
std::optional<std::string> environment_setting(const std::string& name);

}  // namespace fraud::ops
