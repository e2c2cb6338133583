#include "events/time.h"

#include <chrono>
#include <cstdio>

namespace fraud::events {
namespace {

// Reads exactly `n` digits at `at`, advancing it; -1 when they are not all digits.
int digits(std::string_view s, std::size_t& at, std::size_t n) {
  if (at + n > s.size()) return -1;
  int value = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[at + i];
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  at += n;
  return value;
}

bool expect(std::string_view s, std::size_t& at, char c) {
  if (at >= s.size() || (s[at] != c && s[at] != (c | 0x20))) return false;
  ++at;
  return true;
}

// Reads ".ffffff…" into microseconds (truncating past six digits); true when absent.
bool fraction(std::string_view s, std::size_t& at, std::int64_t& micros) {
  if (at >= s.size() || s[at] != '.') return true;
  ++at;
  std::size_t start = at;
  std::int64_t scale = 100000;
  while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
    micros += (s[at] - '0') * scale;
    scale /= 10;
    ++at;
  }
  return at > start;
}

// Reads "Z" or "±HH:MM" into an offset in minutes east of UTC.
bool offset(std::string_view s, std::size_t& at, int& minutes) {
  if (at < s.size() && (s[at] == 'Z' || s[at] == 'z')) {
    ++at;
    minutes = 0;
    return true;
  }
  if (at >= s.size() || (s[at] != '+' && s[at] != '-')) return false;
  int sign = s[at++] == '-' ? -1 : 1;
  int hh = digits(s, at, 2);
  if (hh < 0 || hh > 23 || !expect(s, at, ':')) return false;
  int mm = digits(s, at, 2);
  if (mm < 0 || mm > 59) return false;
  minutes = sign * (hh * 60 + mm);
  return true;
}

}  // namespace

Timestamp wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<Timestamp> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  std::size_t at = 0;
  int y = digits(s, at, 4);
  if (y < 0 || !expect(s, at, '-')) return std::nullopt;
  int mo = digits(s, at, 2);
  if (mo < 0 || !expect(s, at, '-')) return std::nullopt;
  int d = digits(s, at, 2);
  if (d < 0 || !expect(s, at, 'T')) return std::nullopt;
  int h = digits(s, at, 2);
  if (h < 0 || h > 23 || !expect(s, at, ':')) return std::nullopt;
  int mi = digits(s, at, 2);
  if (mi < 0 || mi > 59 || !expect(s, at, ':')) return std::nullopt;
  int sec = digits(s, at, 2);
  if (sec < 0 || sec > 60) return std::nullopt;  // 60: a leap second
  std::int64_t micros = 0;
  int offset_minutes = 0;
  if (!fraction(s, at, micros) || !offset(s, at, offset_minutes) || at != s.size()) return std::nullopt;
  year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) return std::nullopt;
  auto seconds = sys_days{date}.time_since_epoch() / 1s + h * 3600LL + mi * 60LL + sec - offset_minutes * 60LL;
  return seconds * 1'000'000 + micros;
}

std::string format_rfc3339(Timestamp micros) {
  using namespace std::chrono;
  auto seconds = micros >= 0 ? micros / 1'000'000 : (micros - 999'999) / 1'000'000;
  auto sub = micros - seconds * 1'000'000;
  sys_days days{floor<std::chrono::days>(sys_seconds{std::chrono::seconds{seconds}}).time_since_epoch()};
  year_month_day date{days};
  auto rest = seconds - days.time_since_epoch() / 1s;
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<long long>(rest / 3600), static_cast<long long>(rest / 60 % 60),
                static_cast<long long>(rest % 60), static_cast<long long>(sub));
  return out;
}

}  // namespace fraud::events
