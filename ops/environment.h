#pragma once
// Settings every process reads from its environment, one way: a setting NAME may be given as
// NAME_FILE=/path instead (secrets handed out as files by Kubernetes or Docker), so that a
// password need not sit in the environment, where `ps e` and crash dumps show it; and
// FRAUD_KAFKA_PROPERTIES_<NAME> passes a librdkafka property through.

#include <map>
#include <optional>
#include <string>

namespace fraud::ops {

/// Environment variables by name; a parameter so tests need not touch the process's own.
using Environment = std::map<std::string, std::string>;

/// This process's environment.
Environment process_environment();

/// The content of the secret file at `path`, without its final newlines; nothing when it
/// cannot be read.
std::optional<std::string> read_secret_file(const std::string& path);

/// The content of the secret file `path` that the variable `variable` names. Throws
/// std::runtime_error naming both when it cannot be read.
std::string secret_from_file(const std::string& variable, const std::string& path);

/// The environment variable `name`, or the content of the file `name`_FILE names (which wins
/// when both are set); nothing when neither is set. Throws std::runtime_error naming the
/// variable and the file when the file cannot be read.
std::optional<std::string> environment_setting(const std::string& name);

/// The librdkafka properties `env` passes through: FRAUD_KAFKA_PROPERTIES_SESSION_TIMEOUT_MS
/// sets session.timeout.ms; FRAUD_KAFKA_PROPERTIES_SASL_PASSWORD_FILE sets sasl.password from
/// the file it names. Throws std::runtime_error naming the variable and the file when that
/// file cannot be read.
std::map<std::string, std::string> kafka_properties(const Environment& env);

}  // namespace fraud::ops
