// bank-sim: records simulated transactions and their outbox rows in one database transaction,
// at a target rate, with labelled fraud scenarios.
//
//   bank-sim [--rate N/s] [--seconds S | --events N] [--customers N] [--fraud-per-1000 F]
//            [--poison-per-1000 P] [--topic transactions] [--seed N] [--run-id ID]
//            [--authorise-url http://host:port --authorise-share F]
//
// With --authorise-url, a share F (0..1) of the transactions is first sent to the service's
// inline door (POST /v1/decisions) with the token in FRAUD_DECISIONS_TOKEN (or _FILE), as an
// authorisation path would: one the service blocks is declined, so neither recorded nor
// published (its label is kept); any other answer, or none, is recorded as usual.
//
// FRAUD_POSTGRES_URL says where the bank's database is (here the same PostgreSQL as the
// service's, in tables of the bank's own: core_transactions, bank_outbox). Labels go to
// fraud_labels, which `fraud-consumer migrate` creates. Exit status: 0, 1 failed, 2 usage.

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <thread>

#include "events/encode.h"
#include "events/json_text.h"
#include "events/time.h"
#include "ops/cli.h"
#include "ops/environment.h"
#include "ops/log.h"
#include "ops/stop_signal.h"
#include "postgres/connection.h"
#include "sim/authoriser.h"
#include "sim/bank.h"

namespace {

using namespace fraud;
using Clock = std::chrono::steady_clock;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS core_transactions (
  transaction_id text PRIMARY KEY,
  account_id     text NOT NULL,
  occurred_at    timestamptz NOT NULL,
  kind           text NOT NULL,
  amount_minor   bigint NOT NULL,
  currency       text NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS bank_outbox (
  id           bigserial PRIMARY KEY,
  -- The event's id, for a relay that routes by column (Debezium's EventRouter takes it as
  -- the record's id header, table.field.event.id); a poison row gets one of its own.
  event_id     text NOT NULL DEFAULT gen_random_uuid()::text,
  aggregate_id text,
  topic        text NOT NULL,
  headers      jsonb NOT NULL DEFAULT '[]',
  payload      text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
);
ALTER TABLE bank_outbox ADD COLUMN IF NOT EXISTS event_id text NOT NULL DEFAULT gen_random_uuid()::text;
CREATE INDEX IF NOT EXISTS bank_outbox_unpublished ON bank_outbox (id) WHERE published_at IS NULL;
)sql";

struct Options {
  double rate = 500, seconds = 60, poison_per_1000 = 0, authorise_share = 0;
  long events = 0;
  std::string topic = "transactions", authorise_url;
  sim::Population population;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], v = argv[i + 1];
    if (flag == "--rate") o.rate = std::stod(v);
    else if (flag == "--seconds") o.seconds = std::stod(v);
    else if (flag == "--events") o.events = std::stol(v);
    else if (flag == "--customers") o.population.customers = std::stoi(v);
    else if (flag == "--fraud-per-1000") o.population.fraud_scenarios_per_1000 = std::stod(v);
    else if (flag == "--poison-per-1000") o.poison_per_1000 = std::stod(v);
    else if (flag == "--topic") o.topic = v;
    else if (flag == "--seed") o.population.seed = static_cast<std::uint32_t>(std::stoul(v));
    else if (flag == "--run-id") o.population.run_id = v;
    else if (flag == "--authorise-url") o.authorise_url = v;
    else if (flag == "--authorise-share") o.authorise_share = std::stod(v);
    else return false;
  }
  return argc % 2 == 1 && o.rate > 0 && o.population.customers > 0 && o.authorise_share >= 0 &&
         o.authorise_share <= 1 && (o.authorise_share == 0 || !o.authorise_url.empty());
}

/// One database transaction: the bank's rows, their outbox rows and their labels together.
struct Batch {
  std::vector<sim::Transaction> transactions;
  std::vector<bool> declined;  ///< per transaction: the authorisation was blocked, so it is not recorded
  int poison = 0;
};

/// What the authorisations of a run came to.
struct AuthorisationCounts {
  long asked = 0, declined = 0, fallbacks = 0, unanswered = 0;
};

void record(pqxx::connection& c, const Batch& batch, const std::string& topic) {
  pqxx::work tx(c);
  for (std::size_t k = 0; k < batch.transactions.size(); ++k) {
    const auto& t = batch.transactions[k];
    const auto& e = t.event;
    if (batch.declined[k]) {  // the money never moved; what it was is still known
      tx.exec_params0(
          "INSERT INTO fraud_labels (transaction_id, is_fraud, scenario, source) VALUES ($1, $2, NULLIF($3, ''), "
          "'simulator') ON CONFLICT (transaction_id, source) DO NOTHING",
          e.transaction_id, t.fraud, t.scenario);
      continue;
    }
    tx.exec_params0(
        "INSERT INTO core_transactions (transaction_id, account_id, occurred_at, kind, amount_minor, currency) "
        "VALUES ($1, $2, $3::timestamptz, $4, $5, $6)",
        e.transaction_id, e.account_id, events::format_rfc3339(e.occurred_at), events::to_string(e.kind),
        e.amount.minor_units, e.amount.currency);
    std::string headers = "[[\"event_id\",";
    events::append_json_string(headers, e.event_id);
    headers += "],[\"event_type\",\"TransactionRecorded\"]]";
    tx.exec_params0(
        "INSERT INTO bank_outbox (event_id, aggregate_id, topic, headers, payload) VALUES ($1, $2, $3, $4::jsonb, $5)",
        e.event_id, e.account_id, topic, headers, events::to_json(e));
    tx.exec_params0(
        "INSERT INTO fraud_labels (transaction_id, is_fraud, scenario, source) VALUES ($1, $2, NULLIF($3, ''), "
        "'simulator') ON CONFLICT (transaction_id, source) DO NOTHING",
        e.transaction_id, t.fraud, t.scenario);
  }
  for (int i = 0; i < batch.poison; ++i)  // a producer bug: an event that is not one
    tx.exec_params0(
        "INSERT INTO bank_outbox (aggregate_id, topic, payload) VALUES ('acc-0', $1, '{\"event_id\":\"broken')", topic);
  tx.commit();
}

int run(const Options& o, const std::atomic<bool>& stop_requested) {
  const char* url = std::getenv("FRAUD_POSTGRES_URL");
  if (!url) return ops::refuse("bank-sim: set FRAUD_POSTGRES_URL\n");
  auto opened = postgres::connect(url);
  auto& c = *opened;
  pqxx::nontransaction(c).exec(kSchema);
  auto population = o.population;
  auto now_s = events::wall_clock_now() / 1'000'000;
  if (population.run_id == "sim") population.run_id = "sim" + std::to_string(now_s);
  // Simulated time starts at midnight UTC 30 days ago, so that its events fall inside the
  // service's dedup window (retention.days) whenever the simulator runs.
  population.start = (now_s - now_s % 86400 - 30 * std::int64_t{86400}) * events::Timestamp{1'000'000};
  sim::Bank bank(population);
  std::mt19937 random(population.seed);
  std::uniform_real_distribution<double> poison(0, 1000), share(0, 1);
  std::optional<sim::Authoriser> authoriser;
  if (o.authorise_share > 0)
    authoriser.emplace(o.authorise_url, ops::environment_setting("FRAUD_DECISIONS_TOKEN").value_or(""));
  AuthorisationCounts authorised;
  // Before recording: the authorisation path asks the inline door, and declines a block.
  auto authorise = [&](const sim::Transaction& t) {
    if (!authoriser || share(random) >= o.authorise_share) return false;
    auto answer = authoriser->authorise(t.event);
    ++authorised.asked;
    if (!answer.answered) return ++authorised.unanswered, false;
    authorised.fallbacks += answer.fallback;
    bool declined = answer.decision == "block";
    authorised.declined += declined;
    return declined;
  };
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(o.seconds);
  long written = 0, fraud = 0, poisoned = 0;
  while (!stop_requested.load() && (o.events > 0 ? written < o.events : Clock::now() < deadline)) {
    // Pace by the target rate: write what is due, in transactions of up to 100.
    auto due = static_cast<long>(std::chrono::duration<double>(Clock::now() - start).count() * o.rate) + 1 - written;
    if (o.events > 0) due = std::min(due, o.events - written);
    if (due <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    Batch batch;
    for (long i = 0; i < std::min(due, 100L); ++i) {
      batch.transactions.push_back(bank.next());
      batch.declined.push_back(authorise(batch.transactions.back()));
      fraud += batch.transactions.back().fraud ? 1 : 0;
      if (poison(random) < o.poison_per_1000) ++batch.poison;
    }
    record(c, batch, o.topic);
    written += static_cast<long>(batch.transactions.size());
    poisoned += batch.poison;
  }
  std::string scenarios;
  for (const auto& [name, n] : bank.scenarios())
    scenarios += (scenarios.empty() ? "" : ", ") + name + " " + std::to_string(n);
  ops::log::info("bank-sim done", {{"transactions", std::to_string(written)},
                                   {"fraudulent", std::to_string(fraud)},
                                   {"poison_records", std::to_string(poisoned)},
                                   {"scenarios", scenarios},
                                   {"authorised_inline", std::to_string(authorised.asked)},
                                   {"declined", std::to_string(authorised.declined)},
                                   {"inline_fallbacks", std::to_string(authorised.fallbacks)},
                                   {"inline_unanswered", std::to_string(authorised.unanswered)}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    if (!parse(argc, argv, options)) return ops::refuse("usage: see the comment at the top of sim/main.cpp\n");
  } catch (const std::exception&) {
    return ops::refuse("bank-sim: bad number in the arguments\n");
  }
  const auto& stop_requested = ops::stop_on_signals();
  try {
    return run(options, stop_requested);
  } catch (const std::exception& e) {
    ops::log::error("bank-sim failed", {{"error", e.what()}});
    return 1;
  }
}
