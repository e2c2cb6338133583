#include <doctest/doctest.h>

#include "events/time.h"

using namespace fraud::events;

TEST_CASE("RFC 3339 timestamps with Z or an offset parse to UTC microseconds") {
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339("1970-01-01T00:00:01.5Z") == 1'500'000);
  CHECK(parse_rfc3339("1970-01-01T01:00:00+01:00") == 0);
  CHECK(parse_rfc3339("1969-12-31T23:00:00-01:00") == 0);
  CHECK(parse_rfc3339("2026-11-27t09:15:02.123z") == parse_rfc3339("2026-11-27T09:15:02.123Z"));
  CHECK(parse_rfc3339("2026-11-27T09:15:02.123456789Z") == *parse_rfc3339("2026-11-27T09:15:02Z") + 123456);
}

TEST_CASE("anything that is not RFC 3339 is refused") {
  for (auto bad :
       {"", "2026-11-27", "2026-11-27T09:15:02", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-27T24:00:00Z",
        "2026-11-27T09:15:02.Z", "2026-11-27T09:15:02+0100", "2026-11-27 09:15:02Z", "2026-11-27T09:15:02Zjunk"})
    CHECK_MESSAGE(!parse_rfc3339(bad), bad);
}

TEST_CASE("formatting round-trips") {
  auto t = *parse_rfc3339("2026-11-27T09:15:02.123Z");
  CHECK(format_rfc3339(t) == "2026-11-27T09:15:02.123000Z");
  CHECK(parse_rfc3339(format_rfc3339(t)) == t);
}
