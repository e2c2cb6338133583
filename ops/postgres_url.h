#pragma once
// How every connection to PostgreSQL is opened: the service's, the console's. A function of
// the URL alone, so it lives with what every process shares and needs no libpq.

#include <string>

namespace fraud::ops {

/// `url` with `connect_timeout=5` unless it names a connect timeout: libpq waits forever by
/// default for a host that does not answer, and no process of ours may hang on that.
/// Accepts both forms libpq does: a postgresql:// URI and a "key=value" string.
inline std::string with_connect_timeout(const std::string& url) {
  if (url.find("connect_timeout") != std::string::npos) return url;
  bool uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  if (!uri) return url + " connect_timeout=5";
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
}

}  // namespace fraud::ops
