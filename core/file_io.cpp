#include <pixgrad/core/file_io.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <pixgrad/core/error.h>

namespace pixgrad::io {

File open_regular_file(const std::string& path, const char* label, uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) fail(label, " '", printable(path), "': no such file");
  if (fd < 0) fail(label, " '", printable(path), "': cannot open: ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    fail(label, " '", printable(path), "': cannot stat: ", std::strerror(error));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    fail(label, " '", printable(path), "': ", S_ISDIR(info.st_mode) ? "is a directory" : "is not a regular file");
  }
  // Back to blocking reads for an ordinary file.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  std::FILE* file = ::fdopen(fd, "rb");
  if (!file) {
    const int error = errno;
    ::close(fd);
    fail(label, " '", printable(path), "': cannot open: ", std::strerror(error));
  }
  if (size) *size = static_cast<uint64_t>(info.st_size);
  return File(file);
}

std::vector<uint8_t> read_regular_file(const std::string& path, const char* label, uint64_t max_bytes) {
  uint64_t size = 0;
  const File file = open_regular_file(path, label, &size);
  if (size > max_bytes)
    fail(label, " '", printable(path), "': the file is ", size, " bytes, over the limit of ", max_bytes);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size())
    fail(label, " '", printable(path), "': cannot read the file: ",
         std::ferror(file.get()) ? std::strerror(errno) : "it ended early");
  return bytes;
}

namespace {

// Best effort: makes a rename durable. The new file is complete either way.
void sync_directory_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string directory = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path, const char* label,
                           const std::function<bool(std::FILE*)>& write_contents) {
  std::string temporary = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temporary.data());  // O_CREAT | O_EXCL: never an existing file or link
  if (fd < 0) fail(label, " '", printable(path), "': cannot write: ", std::strerror(errno));
  ::fchmod(fd, 0644);
  std::FILE* file = ::fdopen(fd, "wb");
  if (!file) {
    const int error = errno;
    ::close(fd);
    ::unlink(temporary.c_str());
    fail(label, " '", printable(path), "': cannot write: ", std::strerror(error));
  }
  bool ok = write_contents(file) && std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
  int error = errno;
  if (std::fclose(file) != 0 && ok) ok = false, error = errno;
  if (ok && std::rename(temporary.c_str(), path.c_str()) != 0) ok = false, error = errno;
  if (!ok) {
    ::unlink(temporary.c_str());
    fail(label, " '", printable(path), "': cannot write: ", std::strerror(error ? error : EIO));
  }
  sync_directory_of(path);
}

std::vector<std::string> remove_unfinished_writes(const std::string& folder,
                                                  const std::function<bool(const std::string& name)>& ours) {
  constexpr char kMarker[] = ".tmp.";
  constexpr size_t kMarkerSize = sizeof kMarker - 1, kSuffixSize = 6;  // mkstemp's XXXXXX
  std::vector<std::string> removed;
  DIR* directory = ::opendir(folder.c_str());
  if (!directory) return removed;  // no folder, nothing left in it
  while (const dirent* entry = ::readdir(directory)) {
    const std::string name = entry->d_name;
    if (name.size() <= kMarkerSize + kSuffixSize) continue;
    const size_t marker = name.size() - kSuffixSize - kMarkerSize;
    const bool suffix_ok = std::all_of(name.end() - kSuffixSize, name.end(),
                                       [](unsigned char c) { return std::isalnum(c) != 0; });
    if (name.compare(marker, kMarkerSize, kMarker) != 0 || !suffix_ok || !ours(name.substr(0, marker))) continue;
    const std::string path = folder + "/" + name;
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && ::unlink(path.c_str()) == 0)
      removed.push_back(path);
  }
  ::closedir(directory);
  std::sort(removed.begin(), removed.end());
  return removed;
}

File open_for_appending(const std::string& path, const char* label) {
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0 && errno == ELOOP) fail(label, " '", printable(path), "': is a symbolic link; not writing through it");
  if (fd < 0) fail(label, " '", printable(path), "': cannot append: ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    fail(label, " '", printable(path), "': is not a regular file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  char last = '\n';
  if (info.st_size > 0 && ::pread(fd, &last, 1, info.st_size - 1) == 1 && last != '\n' && ::write(fd, "\n", 1) != 1) {
    ::close(fd);
    fail(label, " '", printable(path), "': cannot append: ", std::strerror(errno));
  }
  std::FILE* file = ::fdopen(fd, "a");
  if (!file) {
    const int error = errno;
    ::close(fd);
    fail(label, " '", printable(path), "': cannot append: ", std::strerror(error));
  }
  return File(file);
}

std::string printable(const std::string& text) {
  // Keeps well-formed UTF-8 (names may have accents); replaces control
  // characters (C0, DEL, C1) and malformed bytes, which a terminal could
  // take for escape sequences.
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    uint32_t code = length == 1 ? lead : length == 2 ? lead & 0x1F : length == 3 ? lead & 0x0F : lead & 0x07;
    for (size_t k = 1; valid && k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      valid = (next >> 6) == 0x2;
      code = (code << 6) | (next & 0x3F);
    }
    const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    valid = valid && code >= smallest[length] && code <= 0x10FFFF && (code < 0xD800 || code > 0xDFFF);
    if (!valid || code < 0x20 || (code >= 0x7F && code <= 0x9F)) {
      out += '?';
      i += valid ? length : 1;
    } else {
      out.append(text, i, length);
      i += length;
    }
  }
  return out;
}

}  // namespace pixgrad::io
