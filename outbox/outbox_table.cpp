#include "outbox/outbox_table.h"

namespace fraud::outbox {
namespace {

/// A column as bytes: bytea as it is, anything else as its UTF-8 text.
std::string bytes_of(pqxx::connection& c, const std::string& table, const std::string& column) {
  auto type = pqxx::nontransaction(c).exec_params(
      "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 "
      "AND NOT attisdropped",
      table, column);
  if (type.empty()) throw OutboxTableError("outbox table " + table + " has no column " + column);
  auto quoted = c.quote_name(column);
  return type[0][0].as<std::string>() == "bytea" ? quoted : "convert_to(" + quoted + "::text, 'UTF8')";
}

}  // namespace

void prepare_statements(pqxx::connection& c, const OutboxTable& t, bool delete_sent) {
  auto table = c.quote_name(t.table), id = c.quote_name(t.id), key = c.quote_name(t.key);
  std::string unsent = delete_sent ? "true" : c.quote_name(t.sent_at) + " IS NULL";
  std::string created = t.created_at.empty()
                            ? "NULL::bigint"
                            : "(extract(epoch FROM " + c.quote_name(t.created_at) + ") * 1000000)::bigint";
  std::string headers = t.headers.empty() ? "''" : "coalesce(" + c.quote_name(t.headers) + "::text, '')";
  c.prepare("buckets", "SELECT b FROM generate_series(0, " + std::to_string(kBuckets - 1) +
                           ") AS b WHERE pg_try_advisory_xact_lock(hashtext($1), b)");
  // $3: the rows this process found it cannot publish, skipped (relay.cpp). The hash is
  // widened before abs(): abs() of the one key hashing to INT_MIN would raise "integer out of
  // range" in every claim.
  c.prepare("claim", "SELECT " + id + ", " + c.quote_name(t.topic) + ", " + bytes_of(c, t.table, t.key) + ", " +
                         headers + ", " + bytes_of(c, t.table, t.payload) + ", " + created + " FROM " + table +
                         " WHERE " + unsent + " AND abs(hashtext(coalesce(" + key + "::text, ''))::bigint) % " +
                         std::to_string(kBuckets) + " = ANY($1::int[]) AND NOT " + id +
                         " = ANY($3::bigint[]) ORDER BY " + id + " LIMIT $2 FOR UPDATE SKIP LOCKED");
  c.prepare("done", delete_sent ? "DELETE FROM " + table + " WHERE " + id + " = ANY($1::bigint[])"
                                : "UPDATE " + table + " SET " + c.quote_name(t.sent_at) + " = now() WHERE " + id +
                                      " = ANY($1::bigint[])");
  c.prepare("pending", "SELECT count(*) FROM " + table + " WHERE " + unsent);
}

std::size_t mark_unsent(pqxx::connection& c, const OutboxTable& t, std::int64_t id_from, std::int64_t id_to) {
  pqxx::work tx(c);
  auto sent = c.quote_name(t.sent_at), id = c.quote_name(t.id);
  auto rows = tx.exec_params("UPDATE " + c.quote_name(t.table) + " SET " + sent + " = NULL WHERE " + id +
                                 " BETWEEN $1 AND $2 AND " + sent + " IS NOT NULL",
                             id_from, id_to);
  tx.commit();
  return rows.affected_rows();
}

}  // namespace fraud::outbox
