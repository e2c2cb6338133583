#include "outbox/deliveries.h"

namespace fraud::outbox {

bool refused_for_what_it_is(RdKafka::ErrorCode err) {
  return err == RdKafka::ERR_MSG_SIZE_TOO_LARGE || err == RdKafka::ERR_RECORD_LIST_TOO_LARGE ||
         err == RdKafka::ERR_INVALID_RECORD;
}

void RowDelivery::fail(RdKafka::ErrorCode err, std::string why, bool by_produce) {
  if (error != RdKafka::ERR_NO_ERROR) return;
  error = err;
  reason = std::move(why);
  refused_by_produce = by_produce;
}

void BatchDeliveries::start(std::size_t rows) {
  rows_.assign(rows, {});
  row_of_.clear();
  first_ = next_;
  outstanding_ = 0;
}

void* BatchDeliveries::expect(std::size_t row) {
  row_of_.push_back(row);
  ++rows_[row].messages;
  ++outstanding_;
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(next_++));
}

void BatchDeliveries::refused(std::size_t row, RdKafka::ErrorCode err, const std::string& why) {
  --outstanding_;
  ++rows_[row].reported;
  rows_[row].fail(err, why, true);
}

void BatchDeliveries::report(void* opaque, RdKafka::ErrorCode err, const std::string& why) {
  auto number = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(opaque));
  if (number < first_ || number >= next_) return;  // from a batch given up on
  auto& row = rows_[row_of_[number - first_]];
  --outstanding_;
  ++row.reported;
  if (err == RdKafka::ERR_NO_ERROR) ++row.acknowledged;
  else row.fail(err, why, false);
}

void BatchDeliveries::abandon() {
  for (auto& row : rows_)
    if (row.reported < row.messages) row.fail(RdKafka::ERR__TIMED_OUT, "no delivery report", false);
  first_ = next_;
  outstanding_ = 0;
}

Verdict judge(const BatchDeliveries& deliveries, bool trust_every_row) {
  Verdict verdict;
  for (std::size_t i = 0; i < deliveries.rows(); ++i) {
    const auto& row = deliveries.row(i);
    if (row.acknowledged_all() || trust_every_row) verdict.acknowledged.push_back(i);
    else if (!refused_for_what_it_is(row.error)) verdict.failed.push_back(i);
    // The broker refuses a whole record batch for one message in it, so only a row that
    // produce() judged alone, or that was sent alone, is surely refused for itself.
    else if (row.refused_by_produce || deliveries.rows() == 1) verdict.unpublishable.push_back(i);
    else {
      verdict.failed.push_back(i);
      verdict.refused_in_a_group = true;
    }
  }
  return verdict;
}

}  // namespace fraud::outbox
