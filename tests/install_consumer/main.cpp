// A program built against an installed pixgrad, through the umbrella header
// only: a tiny convolutional model fitted by Adam for a few steps on the CPU,
// and a PNG written and decoded again (which links the image codecs).
// Usage: consumer <scratch folder>; exits non-zero on any failure.
#include <pixgrad/pixgrad.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

using namespace pixgrad;

namespace {

int failed(const std::string& message) {
  std::fprintf(stderr, "consumer: %s\n", message.c_str());
  return 1;
}

bool all_finite(const Tensor& tensor) {
  for (const float value : tensor.to_vector())
    if (!std::isfinite(value)) return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return failed("usage: consumer <scratch folder>");
  try {
    manual_seed(1);  // the layers' initial weights
    nn::Sequential model(nn::make<nn::Conv2d>(nn::Conv2dOptions(3, 8, 3).padding(1)), nn::make<nn::LeakyReLU>(0.2),
                         nn::make<nn::Conv2d>(nn::Conv2dOptions(8, 3, 3).padding(1)));
    Generator generator(7);
    const Tensor input = Tensor::normal({2, 3, 8, 8}, 0, 1, generator);
    const Tensor target = tanh(input);

    optim::Adam adam(model.parameters(), optim::AdamOptions(1e-2));
    const int steps = 10;
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < steps; ++step) {
      adam.zero_grad();
      const Tensor loss = l1_loss(model.forward(input), target);
      loss.backward();
      for (const auto& [name, parameter] : model.named_parameters())
        if (!parameter.grad().defined() || !all_finite(parameter.grad()))
          return failed("no finite gradient for " + name);
      adam.step();
      (step == 0 ? first_loss : last_loss) = loss.item();
    }
    std::printf("consumer: L1 loss %.4f -> %.4f after %d Adam steps\n", first_loss, last_loss, steps);
    if (!(last_loss < 0.9 * first_loss)) return failed("the loss did not go down");

    data::Image image(5, 3, 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 17);
    const std::string path = std::string(argv[1]) + "/consumer.png";
    data::save_png(path, image);
    const data::Image decoded = data::load_image(path);
    if (decoded.width != image.width || decoded.height != image.height || decoded.pixels != image.pixels)
      return failed("the PNG read back differs from the one written");
    std::printf("consumer: PNG round trip ok; CUDA backend %s\n", built_with_cuda() ? "built" : "not built");
  } catch (const std::exception& error) {
    return failed(error.what());
  }
  return 0;
}
