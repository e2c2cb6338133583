#include "ops/file_stamp.h"

#include <sys/stat.h>

namespace fraud::ops {

FileStamp FileStamp::of(const std::string& path) {
  FileStamp stamp;
  struct stat s {};
  if (::stat(path.c_str(), &s) != 0) return stamp;
  stamp.fields_ = {static_cast<std::int64_t>(s.st_dev),          static_cast<std::int64_t>(s.st_ino),
                   static_cast<std::int64_t>(s.st_size),         static_cast<std::int64_t>(s.st_mtim.tv_sec),
                   static_cast<std::int64_t>(s.st_mtim.tv_nsec), static_cast<std::int64_t>(s.st_ctim.tv_sec),
                   static_cast<std::int64_t>(s.st_ctim.tv_nsec)};
  return stamp;
}

}  // namespace fraud::ops
