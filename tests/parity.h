// Parity with PyTorch: runs what tools/reference/make_fixtures.py computed in
// PyTorch (float64, on float32 inputs) again in pixgrad, on a given device,
// and compares. Shared by tests/test_parity.cpp (CPU) and
// tests/cuda/test_cuda_parity.cpp; header-only because the CUDA suite does not
// link the CPU suite's helpers. The fixture folder is found as
// tests/test_paths.h says.
//
// The error of a comparison is max|actual - expected| / max|expected|: the
// worst deviation measured against the tensor's own scale (relative error in
// the max norm), so a gradient of size 1e-3 is held to 1e-7 absolute, not to
// the 1e-4 that a max(1, ...) floor would allow. A tensor whose reference is
// exactly zero is compared absolutely. Every comparison must stay <= 1e-4.
//
// One documented exception, the chainer preset's "cancelled biases": a conv
// bias followed directly by batch norm has a zero gradient in exact
// arithmetic (the norm subtracts the batch mean, bias included). The float64
// reference gives ~1e-16; float32 gives rounding noise, which Chainer's Adam
// (eps beside the uncorrected sqrt(v)) turns into steps of up to ~lr in a
// random direction. For those biases the test requires the gradient to be
// zero at noise level (<= 1e-4 of the network's largest gradient) and, after
// the three steps, bounds what the noise can move: the bias, its Adam
// moments and the running mean of the norm it feeds (cancelled_bias_limits).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pixgrad/core/ops.h>
#include <pixgrad/core/safetensors.h>
#include <pixgrad/core/tensor.h>
#include <pixgrad/models/pix2pix.h>
#include "test_paths.h"

namespace pixgrad::parity {

inline constexpr double kTolerance = 1e-4;

// max |actual - expected| / max |expected| (absolute when expected is all zero).
inline double relative_error(const Tensor& actual, const Tensor& expected) {
  REQUIRE(actual.defined());
  REQUIRE(shape_str(actual.shape()) == shape_str(expected.shape()));
  const std::vector<double> a = actual.to_double_vector(), b = expected.to_double_vector();
  double scale = 0, worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(b[i]));
    const double difference = std::abs(a[i] - b[i]);
    worst = std::max(worst, std::isnan(difference) ? std::numeric_limits<double>::infinity() : difference);
  }
  return scale > 0 ? worst / scale : worst;
}

inline double max_abs(const Tensor& tensor) {
  double largest = 0;
  for (double v : tensor.to_double_vector()) largest = std::max(largest, std::abs(v));
  return largest;
}

struct Fixture {
  std::string path;
  std::map<std::string, Tensor> tensors;  // on the CPU
  nlohmann::json config;
  std::set<std::string> cancelled_biases;  // pixgrad names with "G."/"D." prefixes

  const Tensor& at(const std::string& key) const {
    const auto found = tensors.find(key);
    INFO(path << ": " << key);
    REQUIRE(found != tensors.end());
    return found->second;
  }
  // The tensors under "<prefix>", with the prefix removed.
  std::map<std::string, Tensor> with_prefix(const std::string& prefix) const {
    std::map<std::string, Tensor> out;
    for (const auto& [key, tensor] : tensors)
      if (key.compare(0, prefix.size(), prefix) == 0) out.emplace(key.substr(prefix.size()), tensor);
    return out;
  }
};

inline Fixture load_fixture(const std::string& file) {
  Fixture fixture;
  fixture.path = testing::fixtures_dir() + "/" + file;
  safetensors::File loaded = safetensors::load(fixture.path);
  fixture.tensors = std::move(loaded.tensors);
  if (loaded.metadata.count("config")) fixture.config = nlohmann::json::parse(loaded.metadata.at("config"));
  if (loaded.metadata.count("cancelled_biases"))
    for (const nlohmann::json& name : nlohmann::json::parse(loaded.metadata.at("cancelled_biases")))
      fixture.cancelled_biases.insert(name.get<std::string>());
  return fixture;
}

// Collects the errors of one test, CHECKs each against its limit and, at the
// end, prints one line per group: the numbers in docs/parity.md.
class Report {
 public:
  explicit Report(std::string title) : title_(std::move(title)) {}
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  // The relative error of `actual` against `expected`, at most kTolerance.
  void compare(const std::string& group, const std::string& name, const Tensor& actual, const Tensor& expected) {
    record(group, name, relative_error(actual.to(Device::cpu()), expected), kTolerance, false);
  }
  // A noise-level check (cancelled biases): `value` at most `limit`; the
  // summary shows value / limit.
  void bound(const std::string& group, const std::string& name, double value, double limit) {
    record(group + " [value/limit]", name, value, limit, true);
  }

  ~Report() {
    std::printf("parity | %s\n", title_.c_str());
    for (const auto& [group, row] : groups_)
      std::printf("parity |   %-48s %4d  max %.2e  %s\n", group.c_str(), row.count, row.worst, row.worst_name.c_str());
    std::fflush(stdout);
  }

 private:
  struct Row {
    int count = 0;
    double worst = 0;
    std::string worst_name;
  };
  void record(const std::string& group, const std::string& name, double error, double limit, bool show_ratio) {
    {
      INFO(title_ << " / " << group << " / " << name << ": " << error << " (limit " << limit << ")");
      CHECK(error <= limit);
    }
    const double shown = show_ratio ? error / limit : error;
    Row& row = groups_[group];
    ++row.count;
    if (shown >= row.worst) {
      row.worst = shown;
      row.worst_name = name;
    }
  }

  std::string title_;
  std::map<std::string, Row> groups_;
};

// A fresh leaf on `device` with the values of a fixture tensor.
inline Tensor leaf_on(const Tensor& values, Device device, bool requires_grad = true) {
  Tensor leaf = values.is_cpu() && device.is_cpu() ? values.clone() : values.to(device);
  leaf.set_requires_grad(requires_grad);
  return leaf;
}

// ---- (a) ops ----

// Runs one op case: inputs "<name>.<input>", output "<name>.output", then the
// gradients of sum(output * R) against "<name>.grad.<input>".
inline void check_op(const Fixture& fixture, Report& report, Device device, const std::string& name,
                     const std::vector<std::string>& inputs,
                     const std::function<Tensor(const std::vector<Tensor>&)>& op) {
  std::vector<Tensor> leaves;
  for (const std::string& input : inputs) leaves.push_back(leaf_on(fixture.at(name + "." + input), device));
  const Tensor output = op(leaves);
  report.compare(name, "output", output, fixture.at(name + ".output"));
  sum(mul(output, fixture.at(name + ".R").to(device))).backward();
  for (size_t i = 0; i < inputs.size(); ++i)
    report.compare(name, "grad." + inputs[i], leaves[i].grad(), fixture.at(name + ".grad." + inputs[i]));
}

inline void check_ops(Device device, const std::string& title) {
  const Fixture fixture = load_fixture("ops.safetensors");
  Report report(title);
  struct Conv {
    const char* name;
    bool transpose;
    ConvParams params;
  };
  for (const Conv& c : {Conv{"conv2d_s1p1", false, {1, 1}}, Conv{"conv2d_s2p1", false, {2, 1}},
                        Conv{"conv2d_s2p0", false, {2, 0}}, Conv{"conv_transpose2d_s2p1", true, {2, 1}},
                        Conv{"conv_transpose2d_s1p0", true, {1, 0}}, Conv{"conv_transpose2d_s2p0", true, {2, 0}}}) {
    const bool bias = fixture.tensors.count(std::string(c.name) + ".bias") > 0;
    std::vector<std::string> inputs{"input", "weight"};
    if (bias) inputs.push_back("bias");
    check_op(fixture, report, device, c.name, inputs, [&](const std::vector<Tensor>& x) {
      const Tensor b = bias ? x[2] : Tensor();
      return c.transpose ? conv_transpose2d(x[0], x[1], b, c.params) : conv2d(x[0], x[1], b, c.params);
    });
  }
  struct Norm {
    const char* name;
    bool training;
    double eps;
  };
  for (const Norm& n : {Norm{"batch_norm_train", true, 1e-5}, Norm{"batch_norm_train_chainer", true, 2e-5},
                        Norm{"batch_norm_eval", false, 1e-5}}) {
    const std::string name = n.name;
    const Tensor running_mean = leaf_on(fixture.at(name + ".running_mean"), device, false);
    const Tensor running_var = leaf_on(fixture.at(name + ".running_var"), device, false);
    check_op(fixture, report, device, name, {"input", "weight", "bias"}, [&](const std::vector<Tensor>& x) {
      return batch_norm(x[0], x[1], x[2], running_mean, running_var, {n.training, 0.1, n.eps});
    });
    if (n.training) {
      report.compare(name, "running_mean_after", running_mean, fixture.at(name + ".running_mean_after"));
      report.compare(name, "running_var_after", running_var, fixture.at(name + ".running_var_after"));
    }
  }
  check_op(fixture, report, device, "softplus", {"input"}, [](const std::vector<Tensor>& x) { return softplus(x[0]); });
  check_op(fixture, report, device, "leaky_relu", {"input"},
           [](const std::vector<Tensor>& x) { return leaky_relu(x[0], 0.2); });
  check_op(fixture, report, device, "relu", {"input"}, [](const std::vector<Tensor>& x) { return relu(x[0]); });
  check_op(fixture, report, device, "tanh", {"input"}, [](const std::vector<Tensor>& x) { return tanh(x[0]); });
  check_op(fixture, report, device, "l1_loss", {"prediction", "target"},
           [](const std::vector<Tensor>& x) { return l1_loss(x[0], x[1]); });
}

// ---- models ----

// pixgrad's options for a model fixture: the preset's own constants, checked
// against the ones the reference used, and the fixture's sizes.
inline models::Pix2PixOptions options_for(const Fixture& fixture) {
  const nlohmann::json& c = fixture.config;
  const models::Preset preset = models::parse_preset(c.at("preset").get<std::string>());
  models::Pix2PixOptions options = models::Pix2PixOptions::for_preset(
      preset, c.at("input_channels").get<int64_t>(), c.at("output_channels").get<int64_t>());
  options.generator.ngf = c.at("ngf").get<int64_t>();
  options.generator.num_downs = c.at("num_downs").get<int>();
  options.generator.use_dropout = false;
  options.discriminator.ndf = c.at("ndf").get<int64_t>();
  if (c.contains("n_layers")) options.discriminator.n_layers = c.at("n_layers").get<int>();
  CHECK(options.lambda_l1 == c.at("lambda_l1").get<double>());
  CHECK(options.lambda_adv == c.at("lambda_adv").get<double>());
  CHECK(options.adam.lr() == c.at("lr").get<double>());
  CHECK(options.adam.beta1() == c.at("beta1").get<double>());
  CHECK(options.adam.beta2() == c.at("beta2").get<double>());
  CHECK(options.adam.eps() == c.at("eps").get<double>());
  CHECK(options.adam.weight_decay() == c.at("weight_decay").get<double>());
  CHECK((options.adam.placement() == optim::EpsilonPlacement::Chainer) == (preset == models::Preset::Chainer));
  for (const models::NormSettings& norm : {options.generator.norm, options.discriminator.norm}) {
    CHECK(norm.kind == models::NormKind::Batch);
    CHECK(norm.eps == c.at("bn_eps").get<double>());
    CHECK(norm.momentum == c.at("bn_momentum").get<double>());
  }
  return options;
}

// A Pix2Pix with the fixture's initial weights, on `device`.
inline std::unique_ptr<models::Pix2Pix> load_model(const Fixture& fixture, Device device) {
  auto model = std::make_unique<models::Pix2Pix>(options_for(fixture));
  model->generator().load_state_dict(fixture.with_prefix("init.G."));
  model->discriminator().load_state_dict(fixture.with_prefix("init.D."));
  model->to(device);
  return model;
}

// The largest gradient magnitude over a network: the scale against which a
// cancelled bias's gradient must be noise.
inline double largest_gradient(const Fixture& fixture, const std::string& prefix) {
  double largest = 0;
  for (const auto& [name, grad] : fixture.with_prefix(prefix)) largest = std::max(largest, max_abs(grad));
  return largest;
}

// (b) G(x), D on fake and real, the losses, and the gradients of G's loss
// w.r.t. G and of D's loss w.r.t. D, at the initial weights on batch0.
inline void check_forward_backward(const std::string& file, Device device, const std::string& title) {
  const Fixture fixture = load_fixture(file);
  const auto model = load_model(fixture, device);
  const bool paper = model->options().preset == models::Preset::Paper;
  Report report(title);
  nn::Module& g = model->generator();
  models::Discriminator& d = model->discriminator();
  g.train();
  d.train();
  const Tensor x = fixture.at("batch0.input").to(device), y = fixture.at("batch0.target").to(device);
  const Tensor fake = g.forward(x);
  const Tensor logits_fake = d.forward(x, fake);
  const Tensor logits_real = d.forward(x, y);
  report.compare("forward", "fake", fake, fixture.at("forward.fake"));
  report.compare("forward", "logits_fake", logits_fake, fixture.at("forward.logits_fake"));
  report.compare("forward", "logits_real", logits_real, fixture.at("forward.logits_real"));

  const double lambda_adv = model->options().lambda_adv, lambda_l1 = model->options().lambda_l1;
  const std::map<std::string, Tensor> losses = [&] {
    std::map<std::string, Tensor> l;
    l["g_adv"] = mean(softplus(neg(logits_fake)));
    l["g_l1"] = l1_loss(fake, y);
    l["g_total"] = add(mul(l["g_adv"], lambda_adv), mul(l["g_l1"], lambda_l1));
    l["d_real"] = mean(softplus(neg(logits_real)));
    l["d_fake"] = mean(softplus(logits_fake));
    l["d_total"] = paper ? mul(add(l["d_fake"], l["d_real"]), 0.5) : add(l["d_real"], l["d_fake"]);
    return l;
  }();
  for (const auto& [name, loss] : losses) report.compare("losses", name, loss, fixture.at("loss." + name));

  g.zero_grad();
  d.zero_grad();
  losses.at("g_total").backward(Tensor(), /*retain_graph=*/true);
  const auto check_grads = [&](nn::Module& module, const std::string& prefix) {
    const double scale = largest_gradient(fixture, "grad." + prefix);
    for (const auto& [name, parameter] : module.named_parameters()) {
      const Tensor expected = fixture.at("grad." + prefix + name);
      if (fixture.cancelled_biases.count(prefix + name)) {
        REQUIRE(parameter.grad().defined());
        report.bound("gradients " + prefix + " cancelled biases", name, max_abs(parameter.grad()), kTolerance * scale);
      } else {
        report.compare("gradients " + prefix, name, parameter.grad(), expected);
      }
    }
  };
  check_grads(g, "G.");
  g.zero_grad();
  d.zero_grad();
  losses.at("d_total").backward();
  check_grads(d, "D.");
}

inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// After the three steps, the entries that a cancelled bias's rounding noise
// reaches, each with the most that noise can move it (absolute):
//   the bias        an Adam step moves a parameter by at most 1.14 lr here
//                   (Cauchy-Schwarz on m and v: beta1 0.5, beta2 0.999,
//                   t <= 3), in whichever direction the noise points, so
//                   pixgrad and the reference part by at most 2.3 lr a step;
//   its exp_avg     noise-level gradients: 1e-4 of the network's largest gradient;
//   its exp_avg_sq  that squared;
//   the running mean of the norm it feeds: the batch mean contains the bias,
//                   so momentum times the bias's drift, once for each forward
//                   pass after the first update (D runs two a step).
struct NoiseLimit {
  const char* group;
  double limit;
};
inline std::map<std::string, NoiseLimit> cancelled_bias_limits(const Fixture& fixture, models::Pix2Pix& model) {
  const int iterations = fixture.config.at("iterations").get<int>();
  const double momentum = fixture.config.at("bn_momentum").get<double>();
  const double drift = 2.3 * model.options().adam.lr() * iterations;
  std::map<std::string, NoiseLimit> limits;
  for (const std::string network : {"G", "D"}) {
    nn::Module& module = network == "G" ? static_cast<nn::Module&>(model.generator())
                                        : static_cast<nn::Module&>(model.discriminator());
    const double noise = kTolerance * largest_gradient(fixture, "grad." + network + ".");
    const auto parameters = module.named_parameters();
    for (size_t i = 0; i < parameters.size(); ++i) {
      const std::string name = network + "." + parameters[i].first;
      if (!fixture.cancelled_biases.count(name)) continue;
      const std::string moments = "optimizer_" + network + "." + std::to_string(i) + ".";
      const std::string norm = name.substr(0, name.size() - std::string(".bias").size()) + "_norm.running_mean";
      limits[name] = {"cancelled biases", drift};
      limits[moments + "exp_avg"] = {"cancelled biases' exp_avg", noise};
      limits[moments + "exp_avg_sq"] = {"cancelled biases' exp_avg_sq", noise * noise};
      limits[norm] = {"running means after cancelled biases",
                      momentum * 2 * (iterations - 1) * drift + kTolerance * max_abs(fixture.at("after3." + norm))};
    }
  }
  return limits;
}

// (c) Three train_step calls on batch0..2; then every entry of
// Pix2Pix::state_dict() against the reference's.
inline void check_three_steps(const std::string& file, Device device, const std::string& title) {
  const Fixture fixture = load_fixture(file);
  const auto model = load_model(fixture, device);
  Report report(title);
  const int iterations = fixture.config.at("iterations").get<int>();
  for (int k = 0; k < iterations; ++k) {
    const std::string batch = "batch" + std::to_string(k);
    const models::StepLosses l =
        model->train_step(fixture.at(batch + ".input").to(device), fixture.at(batch + ".target").to(device));
    const std::pair<const char*, double> values[] = {{"g_total", l.g_total}, {"g_adv", l.g_adv},
                                                     {"g_l1", l.g_l1},       {"d_total", l.d_total},
                                                     {"d_real", l.d_real},   {"d_fake", l.d_fake}};
    for (const auto& [name, value] : values) {
      const std::string key = "step" + std::to_string(k) + "." + name;
      report.compare("step losses", key, Tensor::full({}, value), fixture.at(key));
    }
  }

  const std::map<std::string, Tensor> state = model->state_dict();
  const std::map<std::string, Tensor> expected = fixture.with_prefix("after3.");
  REQUIRE(state.size() == expected.size());
  const std::map<std::string, NoiseLimit> noise_limits = cancelled_bias_limits(fixture, *model);
  for (const auto& [key, reference] : expected) {
    REQUIRE(state.count(key) == 1);
    const Tensor& actual = state.at(key);
    const auto limit = noise_limits.find(key);
    if (limit != noise_limits.end()) {
      report.bound(limit->second.group, key, max_abs(sub(actual, reference)), limit->second.limit);
      continue;
    }
    std::string group = key.substr(0, key.find('.'));
    for (const char* kind : {".running_mean", ".running_var", ".step", ".exp_avg", ".exp_avg_sq"})
      if (ends_with(key, kind)) group += std::string(" ") + (kind + 1);
    if (group == "G" || group == "D") group += " parameters";
    report.compare(group, key, actual, reference);
  }
}

}  // namespace pixgrad::parity
