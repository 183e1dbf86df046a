#include <pixgrad/training/progress.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace pixgrad::training {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s / 60 % 60));
  else if (s >= 60)
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  else
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(s));
  return text;
}

ProgressBar::ProgressBar(int64_t total, int64_t start, int64_t line_every, std::FILE* out, bool redraw)
    : total_(std::max<int64_t>(total, 1)),
      start_(start),
      line_every_(std::max<int64_t>(line_every, 1)),
      out_(out),
      terminal_(redraw && out != nullptr && isatty(fileno(out)) != 0),
      began_(std::chrono::steady_clock::now()),
      last_draw_(began_),
      done_(start) {}

double ProgressBar::seconds_per_step() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - began_).count();
  return done_ > start_ ? elapsed / static_cast<double>(done_ - start_) : 0.0;
}

std::string ProgressBar::render(int64_t done, const std::string& status) const {
  constexpr int kWidth = 24;
  const double fraction = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const int filled = static_cast<int>(fraction * kWidth);
  const double per_step = seconds_per_step();
  char head[160];
  std::snprintf(head, sizeof head, "%3.0f%% [%s%s] %lld/%lld  %.3f s/it  ETA %s", fraction * 100,
                std::string(static_cast<size_t>(filled), '#').c_str(),
                std::string(static_cast<size_t>(kWidth - filled), '.').c_str(), static_cast<long long>(done),
                static_cast<long long>(total_), per_step,
                done > start_ ? format_duration(per_step * static_cast<double>(total_ - done)).c_str() : "?");
  return std::string(head) + (status.empty() ? "" : "  " + status);
}

void ProgressBar::update(int64_t done, const std::string& status) {
  done_ = done;
  if (out_ == nullptr) return;
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    std::fprintf(out_, "\r\033[K%s", render(done, status).c_str());
    drawn_ = true;
  } else if (done % line_every_ == 0 || done == total_) {
    std::fprintf(out_, "%s\n", render(done, status).c_str());
  }
  last_draw_ = now;
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (out_ == nullptr) return;
  if (terminal_ && drawn_) std::fprintf(out_, "\n");
  drawn_ = false;
  std::fflush(out_);
}

}  // namespace pixgrad::training
