#include "postgres/connection.h"

namespace fraud::postgres {

std::string with_connect_timeout(const std::string& url) {
  if (url.find("connect_timeout") != std::string::npos) return url;
  bool uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  if (!uri) return url + " connect_timeout=5";
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
}

std::unique_ptr<pqxx::connection> connect(const std::string& url, const SessionSettings& settings) {
  auto connection = std::make_unique<pqxx::connection>(with_connect_timeout(url));
  if (settings.empty()) return connection;
  std::string statements;
  for (const auto& [name, value] : settings) statements += "SET " + name + " = " + connection->quote(value) + "; ";
  pqxx::nontransaction(*connection).exec0(statements);
  return connection;
}

}  // namespace fraud::postgres
