// DCGAN (Radford et al. 2016) on 64x64 crops of the facade photos: a stack of
// transposed convolutions (G) against a stack of convolutions (D), trained
// with the vanilla objective and Adam as in the paper. At the end, G's
// samples for 64 fixed noise vectors are written to OUTPUT/samples.png.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <optional>

#include <pixgrad/pixgrad.h>

using namespace pixgrad;

constexpr int64_t kNoise = 100;  // length of G's input vector
constexpr int64_t kWidth = 64;   // channels of G's last and D's first hidden layer

// 4x4 kernels and, as in the DCGAN reference, no biases: the batch norm after
// most layers would cancel them.
std::shared_ptr<nn::ConvTranspose2d> up(int64_t in, int64_t out, int64_t stride, int64_t pad) {
  return nn::make<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(in, out, 4).stride(stride).padding(pad).bias(false));
}
std::shared_ptr<nn::Conv2d> down(int64_t in, int64_t out, int64_t stride, int64_t pad) {
  return nn::make<nn::Conv2d>(nn::Conv2dOptions(in, out, 4).stride(stride).padding(pad).bias(false));
}
std::shared_ptr<nn::BatchNorm2d> norm(int64_t channels) {
  return nn::make<nn::BatchNorm2d>(nn::BatchNorm2dOptions(channels));
}

int main(int argc, char** argv) {
  CLI::App app{"dcgan: a DCGAN on 64x64 crops of the facade photos, writing a grid of samples"};
  std::string data_dir, output, device_name = "auto";
  int iterations = 2000, batch_size = 64;
  app.add_option("--data", data_dir, "The facades folder (train/*.jpg, photo on the left)")->required();
  app.add_option("--output", output, "Folder for samples.png (created if missing)")->required();
  app.add_option("--iterations", iterations, "D and G updates")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch_size, "Photos per update")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--device", device_name, "auto | cpu | cuda | cuda:N")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress line by line, also when piped

  try {
    const Device device = Device::parse(device_name);
    manual_seed(0);  // the layers' initial weights
    auto generator = nn::make<nn::Sequential>(
        up(kNoise, 8 * kWidth, 1, 0), norm(8 * kWidth), nn::make<nn::ReLU>(),      // 1x1 -> 4x4
        up(8 * kWidth, 4 * kWidth, 2, 1), norm(4 * kWidth), nn::make<nn::ReLU>(),  // 8x8
        up(4 * kWidth, 2 * kWidth, 2, 1), norm(2 * kWidth), nn::make<nn::ReLU>(),  // 16x16
        up(2 * kWidth, kWidth, 2, 1), norm(kWidth), nn::make<nn::ReLU>(),          // 32x32
        up(kWidth, 3, 2, 1), nn::make<nn::Tanh>());                                // 64x64 RGB in [-1, 1]
    auto discriminator = nn::make<nn::Sequential>(
        down(3, kWidth, 2, 1), nn::make<nn::LeakyReLU>(0.2),                                 // 32x32
        down(kWidth, 2 * kWidth, 2, 1), norm(2 * kWidth), nn::make<nn::LeakyReLU>(0.2),      // 16x16
        down(2 * kWidth, 4 * kWidth, 2, 1), norm(4 * kWidth), nn::make<nn::LeakyReLU>(0.2),  // 8x8
        down(4 * kWidth, 8 * kWidth, 2, 1), norm(8 * kWidth), nn::make<nn::LeakyReLU>(0.2),  // 4x4
        down(8 * kWidth, 1, 1, 0));                                                          // one logit
    generator->to(device);
    discriminator->to(device);
    optim::Adam g_optimizer(generator->parameters(), optim::AdamOptions(2e-4).beta1(0.5));
    optim::Adam d_optimizer(discriminator->parameters(), optim::AdamOptions(2e-4).beta1(0.5));
    const models::GanObjective objective = models::GanObjective::Vanilla;

    // Each file is photo | labels; the default direction, AtoB, makes the
    // photo the input, shrunk to 72x72 and cut to a random 64x64 window.
    data::AlignedOptions crops;
    crops.load_size = 72;
    crops.crop_size = 64;
    data::DataLoader loader(std::make_shared<data::AlignedDataset>(data_dir, "train", crops),
                            {static_cast<size_t>(batch_size), /*shuffle*/ true, /*seed*/ 0, /*workers*/ 2,
                             /*prefetch*/ 4, /*drop_last*/ true});
    Generator noise(1);
    const Tensor fixed_noise = Tensor::normal({64, kNoise, 1, 1}, 0, 1, noise, device);

    int iteration = 0;
    for (uint64_t epoch = 0; iteration < iterations; ++epoch) {
      loader.start_epoch(epoch);
      std::optional<data::Batch> batch;
      while (iteration < iterations && (batch = loader.next())) {
        ++iteration;
        const Tensor real = batch->input.to(device);
        const Tensor fake = generator->forward(Tensor::normal({batch_size, kNoise, 1, 1}, 0, 1, noise, device));

        // D learns to tell photos from samples; detach() keeps G out of D's update.
        d_optimizer.zero_grad();
        const Tensor d_loss =
            models::discriminator_loss(objective, discriminator->forward(real), discriminator->forward(fake.detach()))
                .total();
        d_loss.backward();
        d_optimizer.step();

        // G learns to make D call its samples real. D stays frozen for the rest
        // of the iteration: the gradient flows through it to G, and D's
        // parameters, which need none, get none.
        const nn::FreezeGuard frozen(*discriminator);
        g_optimizer.zero_grad();
        const Tensor g_loss = models::generator_loss(objective, discriminator->forward(fake));
        g_loss.backward();
        g_optimizer.step();

        if (iteration == 1 || iteration % 10 == 0 || iteration == iterations)
          std::printf("[%5d/%5d] D loss %.4f | G loss %.4f\n", iteration, iterations, d_loss.item(), g_loss.item());
      }
    }

    // G in training mode, as it learned: batch norm uses these 64 samples' statistics.
    NoGradGuard no_grad;
    const Tensor samples = generator->forward(fixed_noise);
    std::vector<std::vector<data::Image>> grid(8);
    for (int64_t i = 0; i < 64; ++i) grid[i / 8].push_back(training::tensor_to_image(samples.batch_slice(i, 1)));
    std::filesystem::create_directories(output);
    const std::string path = (std::filesystem::path(output) / "samples.png").string();
    data::save_png(path, training::make_grid(grid, 2));  // to samples.png.tmp, then renamed
    std::printf("wrote %s\n", path.c_str());
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "dcgan: %s\n", error.what());
    return 1;
  }
}
