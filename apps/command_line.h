// Command-line parsing shared by the programs: a repeated option takes its
// last value (so an override can be appended to a long command), and a
// mistake is one line naming the program and pointing to --help.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>

namespace pixgrad::apps {

// Call before adding options.
inline void last_value_wins(CLI::App& app) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// Parses argv; returns the exit status when the program should stop now
// (0 after --help, CLI11's code, 100 and above, after a mistake).
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv, const char* program) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);
    std::fprintf(stderr, "%s: %s (see %s --help)\n", program, error.what(), program);
    return error.get_exit_code();
  }
}

}  // namespace pixgrad::apps
