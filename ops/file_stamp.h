#pragma once
// Whether a file changed since it was last read, for the files the processes read again while
// running (the console's tokens and rules files): its device, inode, size, and modification and
// status-change times to the nanosecond. The status-change time is one no copy can preserve,
// so a file copied into place with its old time and size still counts as changed, and one
// replaced by a rename does too (another inode).

#include <array>
#include <cstdint>
#include <string>

namespace fraud::ops {

class FileStamp {
 public:
  /// The stamp of the file at `path` now; all zero when it cannot be read.
  static FileStamp of(const std::string& path);

  bool operator==(const FileStamp&) const = default;

 private:
  std::array<std::int64_t, 7> fields_{};
};

}  // namespace fraud::ops
