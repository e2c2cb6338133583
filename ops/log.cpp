#include "ops/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>

#include "events/json_text.h"
#include "events/time.h"

namespace fraud::ops::log {
namespace {

std::atomic<Level> threshold{Level::info};

const char* name(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

}  // namespace

void set_level(std::string_view level) {
  for (auto l : {Level::debug, Level::info, Level::warn, Level::error})
    if (level == name(l)) threshold = l;
}

void write(Level level, std::string_view message, Fields fields) {
  if (level < threshold.load(std::memory_order_relaxed)) return;
  std::string line =
      "{\"ts\":\"" + events::format_rfc3339(events::wall_clock_now()) + "\",\"level\":\"" + name(level) + "\",\"msg\":";
  events::append_json_string(line, message);
  for (const auto& [key, value] : fields) {
    line += ',';
    events::append_json_string(line, key);
    line += ':';
    events::append_json_string(line, value);
  }
  line += "}\n";
  std::fwrite(line.data(), 1, line.size(), stderr);  // one call: lines from threads never interleave
}

}  // namespace fraud::ops::log
