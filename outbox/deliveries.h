#pragma once
// What became of the messages of the batch in hand, and what to do with each row once every
// report is in. No broker, no database: the relay feeds it librdkafka's delivery reports.

#include <librdkafka/rdkafkacpp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fraud::outbox {

/// Whether the producer or the broker refused a message for what it is (too large, an invalid
/// record): it would be refused on every attempt. See relay.cpp, "Rows that cannot be published".
bool refused_for_what_it_is(RdKafka::ErrorCode err);

/// What became of one row's messages: one, or two when fault injection duplicates it.
struct RowDelivery {
  std::size_t messages = 0, reported = 0, acknowledged = 0;
  RdKafka::ErrorCode error = RdKafka::ERR_NO_ERROR;  ///< the first failure
  std::string reason;
  bool refused_by_produce = false;  ///< produce() itself refused a message: it judged that message alone

  bool acknowledged_all() const { return messages > 0 && acknowledged == messages; }
  void fail(RdKafka::ErrorCode err, std::string why, bool by_produce);
};

/// The delivery state of the batch in hand. The relay owns it, not a stack frame, and every
/// message carries a number as its opaque, not a pointer: a report that comes after its batch
/// was given up on finds a number that no row of the current batch has, and changes nothing.
class BatchDeliveries {
 public:
  void start(std::size_t rows);

  /// Numbers the next message, of row `row`, as owed a report; the number is its opaque.
  void* expect(std::size_t row);

  /// The message `expect` numbered last was refused before it was sent (by produce(), or for
  /// its content): no report will come for it.
  void refused(std::size_t row, RdKafka::ErrorCode err, const std::string& why);

  /// A delivery report, from librdkafka's callback.
  void report(void* opaque, RdKafka::ErrorCode err, const std::string& why);

  /// Fails every row still owed a report; any report that comes later is ignored.
  void abandon();

  std::size_t rows() const { return rows_.size(); }
  std::size_t outstanding() const { return outstanding_; }
  const RowDelivery& row(std::size_t i) const { return rows_[i]; }

 private:
  std::vector<RowDelivery> rows_;
  std::vector<std::size_t> row_of_;     ///< message number - first_ -> row
  std::uint64_t first_ = 1, next_ = 1;  // 0 is never a message's number
  std::size_t outstanding_ = 0;
};

/// What to do with each row of a batch once its reports are in (indexes into the batch).
struct Verdict {
  std::vector<std::size_t> acknowledged, unpublishable, failed;
  bool refused_in_a_group = false;  ///< the broker refused a message of a multi-row batch for what it is
};

/// The verdict on a batch whose reports are all in (or abandoned). `trust_every_row` marks
/// every row acknowledged whatever its reports said: the mechanisms stage's relay_acks switch.
Verdict judge(const BatchDeliveries& deliveries, bool trust_every_row = false);

}  // namespace fraud::outbox
