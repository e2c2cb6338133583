#include "cases/audit_chain.h"

#include <pqxx/pqxx>

#include "cases/desk_transaction.h"

namespace fraud::cases {
namespace {

// Every row in chain order: whether it links to the row before (the start's hash for the
// first), whether its seal is its own, and whether its number follows the one before. The
// canonical text is migrations/0021's fraud_audit_canonical(), written out again here.
constexpr const char* kChain = R"sql(
WITH chain AS (
  SELECT a.chain_seq, a.audit_id, a.row_hash,
         a.prev_hash = coalesce(lag(a.row_hash) OVER w, sha256(convert_to('fraud audit chain', 'UTF8'))) AS linked,
         a.row_hash = sha256(a.prev_hash || convert_to(jsonb_build_object(
           'chain_seq', a.chain_seq, 'audit_id', a.audit_id,
           'at', (extract(epoch FROM a.at) * 1000000)::bigint,
           'actor', a.actor, 'action', a.action, 'object', a.object, 'before', a.before, 'after', a.after,
           'reason', a.reason, 'login', a.login, 'idempotency_key', a.idempotency_key, 'request', a.request,
           'result', a.result)::text, 'UTF8')) AS sealed,
         a.chain_seq = coalesce(lag(a.chain_seq) OVER w, 0) + 1 AS numbered
  FROM public.audit_log a
  WINDOW w AS (ORDER BY a.chain_seq)
)
SELECT chain_seq, audit_id, encode(row_hash, 'hex'), coalesce(linked AND sealed AND numbered, false), linked, sealed
FROM chain ORDER BY chain_seq)sql";

std::string describe(const pqxx::row& row) {
  std::string where = "row " + std::string(row[0].c_str()) + " (audit_id " + row[1].c_str() + "): ";
  if (row[0].is_null()) return "a row without a chain number (audit_id " + std::string(row[1].c_str()) + ")";
  if (!row[5].is_null() && !row[5].as<bool>()) return where + "its content is not what was sealed";
  if (!row[4].is_null() && !row[4].as<bool>())
    return where + "it does not link to the row before (one was removed or changed)";
  return where + "its number does not follow the row before (one was removed)";
}

}  // namespace

std::optional<ChainLink> parse_link(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || text.size() - colon - 1 != 64) return std::nullopt;
  ChainLink link;
  try {
    std::size_t used = 0;
    link.seq = std::stoll(text.substr(0, colon), &used);
    if (used != colon || link.seq < 1) return std::nullopt;
  } catch (const std::exception&) {
    return std::nullopt;
  }
  link.hash = text.substr(colon + 1);
  if (link.hash.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  return link;
}

AuditVerdict verify_audit_chain(const std::string& url, const std::optional<ChainLink>& known) {
  // One snapshot for the rows and the head (REPEATABLE READ), or a row committed between the
  // two reads would look like rows removed from the end; and names resolved in pg_catalog
  // first, so that no function or view the database's owner made can stand in for
  // sha256(), convert_to() or the tables.
  return detail::in_transaction(url, "REPEATABLE READ", [&](pqxx::work& tx) {
    tx.exec0("SET LOCAL statement_timeout = 0; SET LOCAL search_path = pg_catalog, pg_temp");
    AuditVerdict verdict;
    auto start = tx.exec1("SELECT encode(sha256(convert_to('fraud audit chain', 'UTF8')), 'hex')");
    verdict.head = {0, start[0].c_str()};
    bool known_found = false;
    for (const auto& row : tx.exec(kChain)) {
      ++verdict.rows;
      if (!row[3].as<bool>()) {
        verdict.problem = describe(row);
        return verdict;
      }
      verdict.head = {row[0].as<std::int64_t>(), row[2].c_str()};
      if (known && known->seq == verdict.head.seq) {
        if (known->hash != verdict.head.hash) {
          verdict.problem = "row " + std::to_string(known->seq) + " is no longer the row whose hash was " +
                            known->hash + ": the chain was rewritten";
          return verdict;
        }
        known_found = true;
      }
    }
    if (known && !known_found) {
      verdict.problem = "the chain no longer reaches row " + std::to_string(known->seq) + ": rows were removed";
      return verdict;
    }
    auto head = tx.exec1("SELECT seq, encode(hash, 'hex') FROM public.audit_chain");
    if (head[0].as<std::int64_t>() != verdict.head.seq || verdict.head.hash != head[1].c_str()) {
      verdict.problem = "the chain's head (row " + std::string(head[0].c_str()) +
                        ") is not its last row: rows were removed from its end";
      return verdict;
    }
    verdict.intact = true;
    return verdict;
  });
}

}  // namespace fraud::cases
