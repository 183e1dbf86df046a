// Writing builds the whole header first (so a bad input fails before any file
// is touched), then streams header and tensors into a temporary file that
// replaces the target only once it is complete and on disk.
//
// Reading trusts nothing: every size is checked against the real file size
// before it is used, and the header must describe the data buffer exactly
// (tensors in any order, but together covering every byte once) — the checks
// of the reference reader, plus a rejection of duplicate JSON keys, which a
// JSON parser would otherwise resolve silently.
#include <pixgrad/core/safetensors.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; this host is not");

namespace pixgrad::safetensors {

namespace {

using nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
constexpr int kMaxHeaderDepth = 128;               // serde_json's recursion limit; real headers nest 3 deep
constexpr const char* kMetadataKey = "__metadata__";

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Float32:
      return "F32";
    case DType::Float64:
      return "F64";
    default:
      return nullptr;
  }
}

// A name from the file, quoted and escaped so that the error stays on one line.
std::string quoted(const std::string& text) { return json(text).dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- writing ----

[[noreturn]] void fail_write(const std::string& path, const std::string& reason) {
  fail("safetensors: cannot write '", path, "': ", reason);
}

void write_u64_le(uint64_t value, unsigned char out[8]) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}

// ---- reading ----

template <typename... Parts>
[[noreturn]] void reject(const std::string& path, const Parts&... parts) {
  fail("safetensors: '", path, "': ", parts...);
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// A one-line summary of a JSON parse error, without raw (possibly binary) header bytes.
std::string describe(const nlohmann::detail::exception& error) {
  std::string message = error.what();
  const size_t start = message.find("] ");
  message = start == std::string::npos ? message : message.substr(start + 2);
  const size_t last_read = message.find("; last read");
  if (last_read != std::string::npos) message.resize(last_read);
  for (char& c : message)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return message;
}

// A first pass over the header that rejects what the JSON parser would
// accept silently: a key repeated within an object (the parser keeps the last
// one), nesting deeper than kMaxHeaderDepth. It keeps one set of keys per open
// object, so the pass is linear in the header's size.
class HeaderChecker : public nlohmann::json_sax<json> {
 public:
  explicit HeaderChecker(const std::string& path) : path_(path) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open_objects_.emplace_back();
    return deeper();
  }
  bool key(string_t& name) override {
    if (!open_objects_.back().insert(name).second) reject(path_, "duplicate key ", quoted(name), " in the header");
    return true;
  }
  bool end_object() override {
    open_objects_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return deeper(); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) override {
    reject(path_, "header is not valid JSON: ", describe(error));
  }

 private:
  bool deeper() {
    if (++depth_ > kMaxHeaderDepth) reject(path_, "header nests deeper than ", kMaxHeaderDepth, " levels");
    return true;
  }

  const std::string& path_;
  std::vector<std::set<std::string>> open_objects_;
  int depth_ = 0;
};

// Parses the header: the checking pass, then an ordinary parse.
json parse_header(const std::string& path, const std::string& text) {
  if (text.empty() || text[0] != '{') reject(path, "header is not a JSON object (it must start with '{')");
  // The reference reader refuses a header with a NUL byte; a parser reading
  // up to the first NUL would ignore whatever follows it.
  if (text.find('\0') != std::string::npos) reject(path, "header contains a NUL byte");
  HeaderChecker checker(path);
  json::sax_parse(text, &checker);
  try {
    return json::parse(text);
  } catch (const json::parse_error& error) {
    reject(path, "header is not valid JSON: ", describe(error));
  }
}

// Non-negative JSON integers, as uint64; false for anything else.
bool as_unsigned(const json& value, uint64_t& out) {
  if (!value.is_number_unsigned()) return false;
  out = value.get<uint64_t>();
  return true;
}

Entry parse_entry(const std::string& path, const std::string& name, const json& info) {
  const std::string tensor = "tensor " + quoted(name) + ": ";
  if (!info.is_object()) reject(path, tensor, "entry is not an object");
  for (const auto& field : info.items())
    if (field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets")
      reject(path, tensor, "unexpected field ", quoted(field.key()));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!info.contains(field)) reject(path, tensor, "missing field '", field, "'");

  Entry entry;
  entry.name = name;
  const json& dtype = info["dtype"];
  if (!dtype.is_string()) reject(path, tensor, "dtype is not a string");
  if (dtype == "F32") {
    entry.dtype = DType::Float32;
  } else if (dtype == "F64") {
    entry.dtype = DType::Float64;
  } else {
    reject(path, tensor, "unsupported dtype ", quoted(dtype.get<std::string>()), " (only F32 and F64 are read)");
  }

  // Bytes = element size * extents, refused as soon as the product could overflow.
  const json& shape = info["shape"];
  if (!shape.is_array()) reject(path, tensor, "shape is not a list");
  uint64_t bytes = element_size(entry.dtype);
  for (const json& extent_json : shape) {
    uint64_t extent = 0;
    if (!as_unsigned(extent_json, extent))
      reject(path, tensor, "shape ", shape.dump(), " is not a list of non-negative integers");
    if (extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (extent != 0 && bytes > std::numeric_limits<uint64_t>::max() / extent))
      reject(path, tensor, "shape ", shape.dump(), " is too large (its byte size overflows)");
    bytes *= extent;
    entry.shape.push_back(static_cast<int64_t>(extent));
  }

  const json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_unsigned(offsets[0], entry.begin) ||
      !as_unsigned(offsets[1], entry.end))
    reject(path, tensor, "data_offsets ", offsets.dump(), " is not a pair of non-negative integers");
  if (entry.begin > entry.end) reject(path, tensor, "data_offsets ", offsets.dump(), " end before they begin");
  if (entry.end - entry.begin != bytes)
    reject(path, tensor, "data_offsets ", offsets.dump(), " span ", entry.end - entry.begin, " bytes, but ",
           dtype.get<std::string>(), " ", shape.dump(), " needs ", bytes);
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& metadata) {
  if (!metadata.is_object()) reject(path, "__metadata__ is not an object");
  std::map<std::string, std::string> out;
  for (const auto& item : metadata.items()) {
    if (!item.value().is_string()) reject(path, "__metadata__ value for ", quoted(item.key()), " is not a string");
    out[item.key()] = item.value().get<std::string>();
  }
  return out;
}

// Sorted by offset, the tensors must tile [0, buffer_bytes) exactly.
void check_layout(const std::string& path, std::vector<Entry>& entries, uint64_t buffer_bytes) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  for (const Entry& e : entries) {
    const std::string where =
        "tensor " + quoted(e.name) + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] ";
    if (e.end > buffer_bytes) reject(path, where, "run past the end of the ", buffer_bytes, "-byte data buffer");
    if (e.begin < covered) reject(path, where, "overlap another tensor's bytes (which end at ", covered, ")");
    if (e.begin > covered) reject(path, where, "leave a gap: bytes ", covered, " to ", e.begin, " belong to no tensor");
    covered = e.end;
  }
  if (covered != buffer_bytes)
    reject(path, "the data buffer has ", buffer_bytes, " bytes but the tensors cover only ", covered,
           " (trailing bytes)");
}

}  // namespace

void save(const std::string& path, const std::map<std::string, Tensor>& tensors,
          const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  std::vector<Tensor> host_tensors;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) fail_write(path, "'__metadata__' cannot name a tensor");
    if (!tensor.defined()) fail_write(path, "tensor " + quoted(name) + " is undefined");
    const char* dtype = dtype_name(tensor.dtype());
    if (dtype == nullptr)
      fail_write(path, "tensor " + quoted(name) + " has unsupported dtype " + to_string(tensor.dtype()));
    host_tensors.push_back(tensor.to(Device::cpu()));
    const uint64_t bytes = tensor.nbytes();
    header[name] = {{"dtype", dtype}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text;
  try {
    text = header.dump(-1, ' ', false, json::error_handler_t::strict);
  } catch (const json::type_error&) {
    fail_write(path, "a tensor name or metadata string is not valid UTF-8");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  io::write_file_atomically(path, "safetensors:", [&](std::FILE* file) {
    unsigned char length[8];
    write_u64_le(text.size(), length);
    if (std::fwrite(length, 1, 8, file) != 8 || std::fwrite(text.data(), 1, text.size(), file) != text.size())
      return false;
    for (const Tensor& tensor : host_tensors)
      if (tensor.nbytes() > 0 && std::fwrite(tensor.raw_data(), 1, tensor.nbytes(), file) != tensor.nbytes())
        return false;
    return true;
  });
}

namespace {

// Reads a whole safetensors file of `file_bytes` bytes, in order, through
// `read(destination, bytes)` (false when the bytes could not be read).
template <typename Read>
File parse_file(const std::string& path, uint64_t file_bytes, Read&& read) {
  const auto read_exactly = [&](void* destination, uint64_t bytes, const std::string& what) {
    if (bytes > 0 && !read(destination, bytes)) reject(path, "could not read the ", what, " (", bytes, " bytes)");
  };
  if (file_bytes < 8) reject(path, "file is ", file_bytes, " bytes, too short for the 8-byte header length");
  unsigned char length_bytes[8];
  read_exactly(length_bytes, 8, "header length");
  uint64_t header_bytes = 0;
  for (int i = 0; i < 8; ++i) header_bytes |= static_cast<uint64_t>(length_bytes[i]) << (8 * i);
  if (header_bytes > kMaxHeaderBytes)
    reject(path, "header length ", header_bytes, " exceeds the limit of ", kMaxHeaderBytes, " bytes");
  if (header_bytes > file_bytes - 8)
    reject(path, "header length ", header_bytes, " exceeds the ", file_bytes - 8, " bytes that follow it");

  std::string text(header_bytes, '\0');
  read_exactly(text.data(), header_bytes, "header");
  const json header = parse_header(path, text);

  File result;
  std::vector<Entry> entries;
  for (const auto& item : header.items()) {
    if (item.key() == kMetadataKey) {
      result.metadata = parse_metadata(path, item.value());
    } else {
      entries.push_back(parse_entry(path, item.key(), item.value()));
    }
  }
  check_layout(path, entries, file_bytes - 8 - header_bytes);

  // The entries now tile the data buffer in file order, so one sequential read fills them.
  for (const Entry& entry : entries) {
    Tensor tensor = Tensor::empty(entry.shape, Device::cpu(), entry.dtype);
    read_exactly(tensor.raw_data(), entry.end - entry.begin, "data of tensor " + quoted(entry.name));
    result.tensors.emplace(entry.name, tensor);
  }
  return result;
}

}  // namespace

File load(const std::string& path) {
  uint64_t file_bytes = 0;
  // A FIFO or device would block or never end: only regular files are read.
  const io::File file = io::open_regular_file(path, "safetensors:", &file_bytes);
  return parse_file(path, file_bytes, [&](void* destination, uint64_t bytes) {
    return std::fread(destination, 1, bytes, file.get()) == bytes;
  });
}

File load_from_memory(const std::string& name, const uint8_t* data, size_t size) {
  size_t position = 0;
  return parse_file(name, size, [&](void* destination, uint64_t bytes) {
    if (bytes > size - position) return false;
    std::memcpy(destination, data + position, bytes);
    position += bytes;
    return true;
  });
}

}  // namespace pixgrad::safetensors
