// The relay's bookkeeping, without a broker: which rows of a batch are marked published,
// set aside or sent again, from the delivery reports librdkafka gives (outbox/deliveries.h),
// and the Kafka headers an outbox row carries (outbox/headers.h).
#include <doctest/doctest.h>

#include "outbox/deliveries.h"
#include "outbox/headers.h"
#include "store/sql_text.h"

using namespace fraud::outbox;
using Rows = std::vector<std::size_t>;

TEST_CASE("a row is marked only when every message sent for it was acknowledged") {
  BatchDeliveries batch;
  batch.start(3);
  auto first = batch.expect(0);
  auto second_copy1 = batch.expect(1), second_copy2 = batch.expect(1);  // a duplicated row
  auto third = batch.expect(2);
  batch.report(first, RdKafka::ERR_NO_ERROR, "");
  batch.report(second_copy1, RdKafka::ERR_NO_ERROR, "");
  batch.report(second_copy2, RdKafka::ERR__MSG_TIMED_OUT, "timed out");
  batch.report(third, RdKafka::ERR_NO_ERROR, "");
  CHECK(batch.outstanding() == 0);
  auto verdict = judge(batch);
  CHECK(verdict.acknowledged == Rows{0, 2});
  CHECK(verdict.failed == Rows{1});
  CHECK(batch.row(1).reason == "timed out");
}

TEST_CASE("a report for a batch given up on changes nothing in the batch after it") {
  BatchDeliveries batch;
  batch.start(1);
  auto late = batch.expect(0);
  batch.abandon();
  CHECK(judge(batch).failed == Rows{0});  // no report came: it may pass, so it is sent again

  batch.start(1);
  auto current = batch.expect(0);
  batch.report(late, RdKafka::ERR_NO_ERROR, "");
  CHECK(batch.outstanding() == 1);
  CHECK(judge(batch).acknowledged.empty());
  batch.report(current, RdKafka::ERR_NO_ERROR, "");
  CHECK(judge(batch).acknowledged == Rows{0});
}

TEST_CASE("a row refused for what it is is set aside only when it was judged alone") {
  SUBCASE("refused by produce() itself, in a batch of several: set aside, the others marked") {
    BatchDeliveries batch;
    batch.start(2);
    batch.expect(0);
    batch.refused(0, RdKafka::ERR_MSG_SIZE_TOO_LARGE, "too large");
    batch.report(batch.expect(1), RdKafka::ERR_NO_ERROR, "");
    auto verdict = judge(batch);
    CHECK(verdict.unpublishable == Rows{0});
    CHECK(verdict.acknowledged == Rows{1});
    CHECK(verdict.failed.empty());
  }
  SUBCASE("refused by the broker in a batch of several: the whole record batch was refused, so rows go one by one") {
    BatchDeliveries batch;
    batch.start(2);
    batch.report(batch.expect(0), RdKafka::ERR_MSG_SIZE_TOO_LARGE, "too large");
    batch.report(batch.expect(1), RdKafka::ERR_MSG_SIZE_TOO_LARGE, "too large");
    auto verdict = judge(batch);
    CHECK(verdict.unpublishable.empty());
    CHECK(verdict.failed == Rows{0, 1});
    CHECK(verdict.refused_in_a_group);
  }
  SUBCASE("refused by the broker when sent alone: set aside") {
    BatchDeliveries batch;
    batch.start(1);
    batch.report(batch.expect(0), RdKafka::ERR_INVALID_RECORD, "invalid");
    CHECK(judge(batch).unpublishable == Rows{0});
  }
  SUBCASE("a failure that may pass is never set aside") {
    BatchDeliveries batch;
    batch.start(1);
    batch.report(batch.expect(0), RdKafka::ERR_UNKNOWN_TOPIC_OR_PART, "unknown topic");
    auto verdict = judge(batch);
    CHECK(verdict.failed == Rows{0});
    CHECK(verdict.unpublishable.empty());
  }
}

TEST_CASE("with relay_acks switched off every row counts as sent, acknowledged or not") {
  BatchDeliveries batch;
  batch.start(1);
  batch.report(batch.expect(0), RdKafka::ERR__TRANSPORT, "broker down");
  CHECK(judge(batch, true).acknowledged == Rows{0});
}

TEST_CASE("an outbox row's headers are read in either shape, with bytes that are not text in hex") {
  using Headers = std::vector<Header>;
  CHECK(parse_headers("").empty());
  CHECK(parse_headers(R"([["trace", "abc"], ["bin", {"hex": "00ff"}], ["none", null]])") ==
        Headers{{"trace", "abc"}, {"bin", std::string("\x00\xff", 2)}, {"none", std::nullopt}});
  CHECK(parse_headers(R"({"trace": "abc", "none": null})") == Headers{{"trace", "abc"}, {"none", std::nullopt}});
}

// What the service writes for a record it dead-letters is what the relay publishes with it:
// names and values that are not text, and headers without a value, come out as they went in.
TEST_CASE("every header the service's outbox writes is read back as the record had it") {
  std::vector<Header> record = {{"trace", "abc"},
                                {std::string("n\xffme", 4), std::string("v\x00\xfe", 3)},
                                {"no-value", std::nullopt},
                                {"empty", ""}};
  CHECK(parse_headers(fraud::store::headers_json(record)) == record);
}

TEST_CASE("a headers column the relay cannot read is refused with what is wrong and where") {
  auto error_of = [](const std::string& json) {
    try {
      parse_headers(json);
    } catch (const HeadersError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  CHECK(error_of(R"([["bin", {"hex": "0g"}]])") == "header 'bin': \"hex\" holds a character that is not a hex digit");
  CHECK(error_of(R"([["bin", {"hex": "abc"}]])") == "header 'bin': \"hex\" has an odd number of digits");
  CHECK(error_of(R"([["n", 5]])") == "header 'n': a string or {\"hex\": \"…\"} was expected");
  CHECK(error_of(R"([[5, "v"]])") == "header 0's name: a string or {\"hex\": \"…\"} was expected");
  CHECK(error_of(R"({"n": [1]})") == "header 'n': a string or {\"hex\": \"…\"} was expected");
  CHECK(error_of(R"([["lonely"]])") == "header 0: not a [name, value] pair");
  CHECK(error_of("42") == "neither [[name, value], …] nor {name: value}");
  CHECK(error_of("{").starts_with("not JSON: "));
}
