// Command-line parsing shared by the programs: a repeated option takes its
// last value (so an override can be appended to a long command), and a
// mistake is one line naming the program and pointing to --help.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <pixgrad/training/train_config.h>

namespace pixgrad::apps {

// Call before adding options.
inline void last_value_wins(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// What parsing argv came to: `status` is set when the program should stop
// now (0 after --help, CLI11's code, 100 and above, after a mistake);
// `report` prints what the user should see (the help, or the mistake).
struct ParseOutcome {
  std::optional<int> status;
  std::string mistake;  // empty after --help
};

inline ParseOutcome try_parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    return {};
  } catch (const CLI::ParseError& error) {
    return {error.get_exit_code(), error.get_exit_code() == 0 ? std::string() : std::string(error.what())};
  }
}

// Prints --help's text, or the mistake as one line pointing to --help.
inline int report_parse_outcome(CLI::App& app, const ParseOutcome& outcome, const char* program) {
  if (outcome.mistake.empty()) return app.exit(CLI::CallForHelp());
  std::fprintf(stderr, "%s: %s (see %s --help)\n", program, outcome.mistake.c_str(), program);
  return *outcome.status;
}

// Parses argv; returns the exit status when the program should stop now.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* program) {
  const ParseOutcome outcome = try_parse_command_line(app, argc, argv);
  if (!outcome.status) return std::nullopt;
  return report_parse_outcome(app, outcome, program);
}

// For an unsigned option (a seed), given to transform() so that it may
// rewrite the text: decimal digits only, within 64 bits.
// CLI11 would take "-1" as 2^64 - 1, clamp a larger number to that, and read
// a leading 0 as octal ("010" as 8), so leading zeros are dropped here.
inline CLI::Validator unsigned_64_bits() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        if (digits) text.erase(0, std::min(text.find_first_not_of('0'), text.size() - 1));
        errno = 0;
        if (digits) std::strtoull(text.c_str(), nullptr, 10);
        if (!digits || errno == ERANGE) return "'" + text + "' is not a whole number in 0.." + std::to_string(UINT64_MAX);
        return {};
      },
      "");
}

// --precision and --tf32, the same in every program; `more` ends the help
// text with what the program does with the choice.
inline void add_precision_options(CLI::App& app, std::string& precision, bool& tf32, const std::string& more = "",
                                  const std::string& tf32_more = "") {
  app.add_option("--precision", precision,
                 "The convolutions' arithmetic: fp32 (default) | tf32 | 3xtf32 | bf16. On a GPU: tf32 runs TF32 tensor "
                 "cores (cuDNN and cuBLAS too), 3xtf32 tensor cores at near-FP32 error, bf16 bf16 tensor cores "
                 "(operands rounded to 8 significant bits, 8x TF32's rounding error); 3xtf32 and bf16 are the "
                 "handwritten kernels' own, cuDNN and cuBLAS compute fp32 there. On the CPU: bf16 rounds the "
                 "operands of most convolution passes to bf16 and sums in FP32 where the CPU has AVX-512 BF16 "
                 "(avx512_bf16), and computes FP32 where it has not; the other precisions are FP32" +
                     more)
      ->check(CLI::IsMember(training::precision_names()));
  app.add_flag("--tf32", tf32, "The same as --precision tf32" + tf32_more);
}

}  // namespace pixgrad::apps
