// A console progress bar for long runs: position, rate, ETA and the latest
// losses on one line. On a terminal it redraws in place (at most ~10 times a
// second); into a file or pipe it prints a plain line every `line_every` steps.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace pixgrad::training {

class ProgressBar {
 public:
  // `out` nullptr draws nothing (but still keeps the rate). `redraw` false
  // prints lines even on a terminal: under mpirun a rank's output is always
  // a terminal, wherever mpirun's own goes.
  ProgressBar(int64_t total, int64_t start, int64_t line_every, std::FILE* out = stdout, bool redraw = true);
  // `done` steps completed; `status` is appended (e.g. "G 12.3 D 0.69").
  void update(int64_t done, const std::string& status);
  // Ends the bar's line so that other output starts on a fresh one.
  void finish();
  // Seconds per step since construction (0 before the first step).
  double seconds_per_step() const;

 private:
  std::string render(int64_t done, const std::string& status) const;

  int64_t total_, start_, line_every_;
  std::FILE* out_;
  bool terminal_;
  std::chrono::steady_clock::time_point began_, last_draw_;
  int64_t done_ = 0;
  bool drawn_ = false;
};

// "1h02m", "3m07s", "12s"
std::string format_duration(double seconds);

}  // namespace pixgrad::training
