// ops::FileStamp: how the console knows its tokens and rules files changed.
#include "ops/file_stamp.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

using fraud::ops::FileStamp;

TEST_CASE("a file's stamp holds while it is untouched and moves when another file takes its place") {
  std::string path = "/tmp/fraud_stamp_" + std::to_string(::getpid());
  std::ofstream(path) << "alice analyst\n";
  auto first = FileStamp::of(path);
  CHECK(FileStamp::of(path) == first);
  CHECK_FALSE(first == FileStamp{});

  // A new file of the same size, given the old one's modification time, renamed into place
  // (how an operator's tooling installs a file): a time-and-size check would miss it.
  struct stat old {};
  REQUIRE(::stat(path.c_str(), &old) == 0);
  std::ofstream(path + ".new") << "bobby analyst\n";
  const struct timespec times[2] = {old.st_atim, old.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, (path + ".new").c_str(), times, 0) == 0);
  REQUIRE(std::rename((path + ".new").c_str(), path.c_str()) == 0);
  CHECK_FALSE(FileStamp::of(path) == first);

  std::remove(path.c_str());
  CHECK(FileStamp::of(path) == FileStamp{});  // gone: all zero, unlike any file
}
