#include <pixgrad/core/device.h>

#include <cctype>

#include <pixgrad/core/cuda_info.h>
#include <pixgrad/core/error.h>

namespace pixgrad {

Device Device::parse(const std::string& text) {
  if (text == "auto") return default_device();
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  const std::string prefix = "cuda:";
  if (text.compare(0, prefix.size(), prefix) == 0 && text.size() > prefix.size() && text.size() < prefix.size() + 4) {
    int index = 0;
    for (size_t i = prefix.size(); i < text.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i])))
        fail("device: cannot parse '", text, "' (expected auto, cpu, cuda or cuda:N)");
      index = index * 10 + (text[i] - '0');
    }
    return cuda(index);
  }
  fail("device: cannot parse '", text, "' (expected auto, cpu, cuda or cuda:N)");
}

bool cuda_is_available() { return cuda_device_count() > 0; }

Device default_device() { return cuda_is_available() ? Device::cuda(0) : Device::cpu(); }

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index_); }

}  // namespace pixgrad
