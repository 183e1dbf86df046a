// Decoding and encoding. JPEG goes through libjpeg-turbo's TurboJPEG API:
// the decoder behind PIL (and so behind the PyTorch reference's pipeline),
// continuously fuzzed upstream; stb_image's JPEG decoder, as packaged, has
// crashed on crafted Huffman tables. PNG goes through stb_image, compiled with
// only its PNG decoder, after our own walk over the chunks (lengths and
// CRCs). Files are read by us (regular files only, size capped) and decoded
// from memory, so no decoder touches the file system. Writing is PNG only,
// through stb_image_write.
#include <pixgrad/data/image.h>

#include <turbojpeg.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <memory>

#include <pixgrad/core/error.h>
#include <pixgrad/core/file_io.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_MAX_DIMENSIONS 8192
#include <stb/stb_image.h>
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace pixgrad::data {

static_assert(STBI_MAX_DIMENSIONS == kMaxImageSide, "stb's limit and ours must agree");

namespace {

using Bytes = std::vector<uint8_t>;

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr bool kFuzzing = true;
#else
constexpr bool kFuzzing = false;
#endif

constexpr std::array<uint8_t, 8> kPngSignature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

[[noreturn]] void fail_image(const std::string& path, const std::string& problem) {
  fail("image '", io::printable(path), "': ", problem);
}

Bytes read_file(const std::string& path) {
  Bytes bytes = io::read_regular_file(path, "image", kMaxImageFileBytes);
  if (bytes.empty()) fail_image(path, "the file is empty");
  return bytes;
}

bool is_png(const Bytes& bytes) {
  return bytes.size() >= kPngSignature.size() && std::equal(kPngSignature.begin(), kPngSignature.end(), bytes.begin());
}

bool is_jpeg(const Bytes& bytes) {
  return bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
}

uint32_t read_u32_be(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void write_u32_be(uint8_t* p, uint32_t value) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(value >> (24 - 8 * i));
}

// The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320).
uint32_t png_crc(const uint8_t* data, size_t length) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < length; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

struct PngChunk {
  size_t start;   // offset of the length field
  uint32_t length;
  std::string type;
  const uint8_t* data(const Bytes& bytes) const { return bytes.data() + start + 8; }
};

// The chunks up to IEND, with every length checked against the buffer. stb
// ignores what follows the last image data, so a PNG cut inside its final
// chunks would decode silently; walking the chunks catches that too.
std::vector<PngChunk> png_chunks(const std::string& path, const Bytes& bytes) {
  std::vector<PngChunk> chunks;
  size_t position = kPngSignature.size();
  while (chunks.empty() || chunks.back().type != "IEND") {
    if (bytes.size() - position < 12 || read_u32_be(bytes.data() + position) > bytes.size() - position - 12) {
      fail_image(path, "truncated PNG: the chunk at byte " + std::to_string(position) +
                           " runs past the end of the file");
    }
    const uint32_t length = read_u32_be(bytes.data() + position);
    const PngChunk chunk{position, length, std::string(bytes.begin() + position + 4, bytes.begin() + position + 8)};
    // The CRC covers the type and the data; stb does not check it. (Fuzzing
    // builds skip it, or mutated inputs would never get past it.)
    if (!kFuzzing &&
        png_crc(bytes.data() + position + 4, 4 + size_t{length}) != read_u32_be(chunk.data(bytes) + length)) {
      fail_image(path, "corrupt PNG: the CRC of the " + io::printable(chunk.type) + " chunk at byte " +
                           std::to_string(position) + " does not match its contents");
    }
    chunks.push_back(chunk);
    position += 12 + size_t{length};
  }
  if (chunks.front().type != "IHDR" || chunks.front().length != 13) fail_image(path, "PNG without a valid IHDR chunk");
  return chunks;
}

// stb leaves the reason empty on some failures.
std::string failure_reason() {
  const char* reason = stbi_failure_reason();
  return reason && *reason ? reason : "no detail from the decoder";
}

// A PNG with `wanted` channels (0: the file's own count), after the chunk
// walk and a check of the header's dimensions.
// The file without its empty IDAT chunks, which carry no data: stb copies a
// first, empty one into a buffer it has not allocated yet (memcpy of 0 bytes
// to a null pointer, undefined behaviour that the fuzzer found).
Bytes without_empty_idat(const Bytes& bytes, const std::vector<PngChunk>& chunks) {
  Bytes kept(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(kPngSignature.size()));
  for (const PngChunk& chunk : chunks) {
    if (chunk.type == "IDAT" && chunk.length == 0) continue;
    const auto begin = bytes.begin() + static_cast<std::ptrdiff_t>(chunk.start);
    kept.insert(kept.end(), begin, begin + 12 + static_cast<std::ptrdiff_t>(chunk.length));
  }
  return kept;
}

Image decode_png(const std::string& path, const Bytes& file, int wanted) {
  const Bytes bytes = without_empty_idat(file, png_chunks(path, file));
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels)) {
    // stb refuses sides over STBI_MAX_DIMENSIONS here with the reason "too large".
    fail_image(path, "corrupt or unsupported PNG header (" + failure_reason() + "; at most " +
                         std::to_string(kMaxImageSide) + " pixels a side)");
  }
  if (width <= 0 || height <= 0) fail_image(path, "empty image in the header");
  if (channels < 1 || channels > 4) fail_image(path, "unsupported channel count " + std::to_string(channels));
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, wanted),
      stbi_image_free);
  if (!decoded) fail_image(path, "corrupt or truncated PNG data (stb: " + failure_reason() + ")");
  const int kept = wanted != 0 ? wanted : channels;
  Image image;
  image.width = width;
  image.height = height;
  image.channels = kept;
  image.pixels.assign(decoded.get(), decoded.get() + static_cast<size_t>(width) * height * kept);
  return image;
}

using TurboJpeg = std::unique_ptr<void, int (*)(tjhandle)>;

// A JPEG as 1 channel (greyscale files) or 3 (colour). Warnings count as
// errors: libjpeg-turbo fills the rest of a truncated file with grey and
// warns, and such an image must not reach training.
Image decode_jpeg(const std::string& path, const Bytes& bytes) {
  const TurboJpeg decoder(tjInitDecompress(), tjDestroy);
  if (!decoder) fail_image(path, "cannot start the JPEG decoder");
  const auto reason = [&] { return io::printable(tjGetErrorStr2(decoder.get())); };
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(decoder.get(), bytes.data(), static_cast<unsigned long>(bytes.size()), &width, &height,
                          &subsampling, &colorspace) != 0) {
    fail_image(path, "corrupt or unsupported JPEG header (" + reason() + ")");
  }
  // The header reader may stop at the end of a cut-off file without an error, sizes still 0.
  if (width <= 0 || height <= 0) fail_image(path, "truncated or corrupt JPEG header (no image size in it)");
  if (width > kMaxImageSide || height > kMaxImageSide) {
    fail_image(path, "JPEG of " + std::to_string(width) + "x" + std::to_string(height) + " pixels (at most " +
                         std::to_string(kMaxImageSide) + " a side)");
  }
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
    fail_image(path, "CMYK JPEGs are not supported (convert it to RGB)");
  const bool grey = colorspace == TJCS_GRAY;
  Image image(width, height, grey ? 1 : 3);
  if (tjDecompress2(decoder.get(), bytes.data(), static_cast<unsigned long>(bytes.size()), image.pixels.data(), width,
                    0, height, grey ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    fail_image(path, std::string(tjGetErrorCode(decoder.get()) == TJERR_WARNING ? "damaged" : "corrupt") +
                         " JPEG data (" + reason() + ")");
  }
  return image;
}


}  // namespace

Image::Image(int width, int height, int channels, uint8_t fill)
    : width(width), height(height), channels(channels) {
  PIXGRAD_CHECK(width >= 0 && height >= 0 && channels >= 1 && channels <= 4, "Image: invalid size ", width, "x",
                height, "x", channels);
  pixels.assign(static_cast<size_t>(width) * height * channels, fill);
}

Image decode_image(const std::string& name, const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) fail_image(name, "the file is empty");
  if (is_png(bytes)) return decode_png(name, bytes, 0);
  if (is_jpeg(bytes)) return decode_jpeg(name, bytes);
  fail_image(name, "not a JPEG or PNG file (unrecognised signature)");
}

Image load_image(const std::string& path) { return decode_image(path, read_file(path)); }

// stb expands a palette PNG to the palette's colours and offers no way to get
// the indices. Rather than decoding PNG ourselves, we decode a copy of the file
// whose palette (PLTE) is replaced by a full identity palette, entry i = grey
// (i, i, i), with a correct CRC: stb's expansion then yields the index itself.
// This stays exact when two entries share a colour, and an index past the
// file's own palette comes out as itself, so it can be reported.
Image decode_label_image(const std::string& path, const std::vector<uint8_t>& bytes) {
  if (!is_png(bytes)) fail_image(path, "a label map must be a PNG file");
  const std::vector<PngChunk> chunks = png_chunks(path, bytes);
  const uint8_t* header = chunks.front().data(bytes);
  const int bit_depth = header[8];
  const int color_type = header[9];
  if (color_type == 0 && bit_depth == 8) return decode_png(path, bytes, 1);
  if (color_type != 3 || bit_depth > 8) {
    fail_image(path, "a label PNG must be palette-indexed or 8-bit greyscale, not colour type " +
                         std::to_string(color_type) + " at " + std::to_string(bit_depth) + " bits");
  }
  const PngChunk* palette = nullptr;
  for (const PngChunk& chunk : chunks) {
    if (chunk.type != "PLTE") continue;
    if (palette || chunk.length == 0 || chunk.length % 3 != 0 || chunk.length > 256 * 3) {
      fail_image(path, "malformed PNG palette (PLTE chunk)");
    }
    palette = &chunk;
  }
  if (!palette) fail_image(path, "palette PNG without a PLTE chunk");
  const uint32_t entries = palette->length / 3;

  const uint32_t identity_entries = 1u << bit_depth;
  Bytes identity(12 + 3 * size_t{identity_entries});
  write_u32_be(identity.data(), 3 * identity_entries);
  std::copy_n(bytes.begin() + palette->start + 4, 4, identity.begin() + 4);  // "PLTE"
  for (uint32_t i = 0; i < 3 * identity_entries; ++i) identity[8 + i] = static_cast<uint8_t>(i / 3);
  write_u32_be(identity.data() + 8 + 3 * identity_entries, png_crc(identity.data() + 4, 4 + 3 * identity_entries));
  Bytes rewritten(bytes.begin(), bytes.begin() + palette->start);
  rewritten.insert(rewritten.end(), identity.begin(), identity.end());
  rewritten.insert(rewritten.end(), bytes.begin() + palette->start + 12 + palette->length, bytes.end());

  const Image expanded = decode_png(path, rewritten, 3);
  Image labels(expanded.width, expanded.height, 1);
  for (size_t i = 0; i < labels.pixels.size(); ++i) {
    labels.pixels[i] = expanded.pixels[3 * i];
    if (labels.pixels[i] >= entries) {
      fail_image(path, "palette index " + std::to_string(labels.pixels[i]) + " at (" +
                           std::to_string(i % labels.width) + ", " + std::to_string(i / labels.width) +
                           ") is outside the " + std::to_string(entries) + "-entry palette");
    }
  }
  return labels;
}

Image load_label_image(const std::string& path) { return decode_label_image(path, read_file(path)); }

void save_png(const std::string& path, const Image& image) {
  if (image.channels < 1 || image.channels > 4 || image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * image.channels) {
    fail_image(path, "cannot save a " + std::to_string(image.width) + "x" + std::to_string(image.height) + "x" +
                         std::to_string(image.channels) + " image holding " + std::to_string(image.pixels.size()) +
                         " bytes");
  }
  Bytes encoded;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<Bytes*>(context);
    out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &encoded, image.width, image.height, image.channels, image.pixels.data(),
                              image.width * image.channels)) {
    fail_image(path, "PNG encoding failed");
  }
  // A reader (or a crash) never sees a half-written file, and no link is followed.
  io::write_file_atomically(path, "image", [&](std::FILE* file) {
    return std::fwrite(encoded.data(), 1, encoded.size(), file) == encoded.size();
  });
}

}  // namespace pixgrad::data
