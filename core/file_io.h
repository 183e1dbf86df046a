// Reading untrusted files: only regular files (a FIFO or a device given as a
// checkpoint or an image would otherwise block forever or never end), with
// the size checked against a limit before anything is allocated. Every
// failure is a one-line pixgrad::Error "<label> '<path>': <problem>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace pixgrad::io {

struct FileCloser {
  void operator()(std::FILE* file) const {
    if (file) std::fclose(file);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Opens `path` for reading if it is a regular file. The file is opened
// without waiting (a FIFO with no writer would block the open itself) and
// checked on the open descriptor, so nothing can swap it in between.
// `label` starts every error ("image" gives "image '<path>': <problem>").
// Returns the file and its size in bytes.
File open_regular_file(const std::string& path, const char* label, uint64_t* size);

// The whole file, refused before reading if it holds more than `max_bytes`.
std::vector<uint8_t> read_regular_file(const std::string& path, const char* label, uint64_t max_bytes);

// Writing files into folders a user may have prepared: nothing here follows
// a symbolic link. A file is written to a new temporary beside it (created
// exclusively, so an existing name or link there is never opened), flushed,
// synced and renamed over `path`, which replaces a link at `path` rather than
// writing through it. `write_contents` returns false on a write error. On
// failure the old file is left as it was and a one-line pixgrad::Error
// "<label> '<path>': cannot write: <reason>" is thrown.
void write_file_atomically(const std::string& path, const char* label,
                           const std::function<bool(std::FILE*)>& write_contents);

// The temporaries write_file_atomically leaves when its process is killed
// mid-write: in `folder`, the regular files named "<name>.tmp.XXXXXX" (six
// letters or digits) for which ours(name) holds are removed, and their paths
// returned. Anything else, links and folders included, is left alone.
std::vector<std::string> remove_unfinished_writes(const std::string& folder,
                                                  const std::function<bool(const std::string& name)>& ours);
// Opens `path` for appending, creating it if missing; refuses a symbolic
// link or anything but a regular file. If the file does not end with a
// newline (a write cut short), one is added, so the next line stands alone.
File open_for_appending(const std::string& path, const char* label);

// `text` with control characters and malformed UTF-8 replaced by '?', for
// printing names and strings that come from files or the command line.
std::string printable(const std::string& text);

}  // namespace pixgrad::io
