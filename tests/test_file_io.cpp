// How files are written (core/file_io.h): an atomic write replaces a link at
// its path instead of writing through it, an append refuses a link, and the
// temporaries a killed writer left are removed by name, nothing else.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>
#include "scratch_folder.h"
#include "test_paths.h"

using namespace pixgrad;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

using testing::bytes_of;

void write(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

}  // namespace

TEST_CASE("an atomic write replaces a link at its path, and an append refuses one", "[file_io]") {
  const testing::ScratchFolder scratch("file-io");
  const fs::path victim = scratch.path / "victim", link = scratch.path / "out";
  write(victim, "precious");
  fs::create_symlink(victim, link);
  io::write_file_atomically(link.string(), "test", [](std::FILE* file) { return std::fputs("new", file) >= 0; });
  CHECK(bytes_of(victim) == "precious");
  CHECK_FALSE(fs::is_symlink(link));
  CHECK(bytes_of(link) == "new");

  fs::remove(link);
  fs::create_symlink(victim, link);
  CHECK_THROWS_WITH(io::open_for_appending(link.string(), "log"), Contains("is a symbolic link"));
  CHECK(bytes_of(victim) == "precious");
}

TEST_CASE("remove_unfinished_writes takes only regular files named <ours>.tmp.XXXXXX", "[file_io]") {
  const testing::ScratchFolder scratch("file-io");
  const fs::path& d = scratch.path;
  const std::vector<std::string> ours = {"index.html.tmp.g8Avxv", "index.html.tmp.000000"};
  const std::vector<std::string> kept = {"index.html",          "index.html.tmp.abc",   "index.html.tmp.abcdefg",
                                         "index.html.tmp.ab-cde", "notes.txt.tmp.abcdef", ".tmp.abcdef",
                                         "index.htm.tmp.abcdef"};
  for (const std::string& name : ours) write(d / name, "half");
  for (const std::string& name : kept) write(d / name, "user's");
  write(d / "victim", "precious");
  fs::create_symlink(d / "victim", d / "index.html.tmp.linked");
  fs::create_directory(d / "index.html.tmp.folder");
  const std::vector<std::string> removed =
      io::remove_unfinished_writes(d.string(), [](const std::string& name) { return name == "index.html"; });
  std::vector<std::string> expected;
  for (const std::string& name : ours) expected.push_back((d / name).string());
  std::sort(expected.begin(), expected.end());
  CHECK(removed == expected);
  for (const std::string& name : ours) CHECK_FALSE(fs::exists(d / name));
  for (const std::string& name : kept) CHECK(bytes_of(d / name) == "user's");
  CHECK(fs::is_symlink(d / "index.html.tmp.linked"));
  CHECK(bytes_of(d / "victim") == "precious");
  CHECK(fs::is_directory(d / "index.html.tmp.folder"));
  CHECK(io::remove_unfinished_writes((d / "missing").string(), [](const std::string&) { return true; }).empty());
}
