#include <pixgrad/training/html_report.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <pixgrad/core/file_io.h>

namespace pixgrad::training {

namespace {

constexpr const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "th{background:#f2f2f2}.charts{display:flex;flex-wrap:wrap;gap:12px}"
    "img{image-rendering:pixelated;max-width:100%}.snapshot{margin:1em 0}"
    "img[data-failed]{outline:3px solid #d62728}";

// A number for people: 4 significant digits; "inf" and "nan" spelled out.
std::string number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

std::string optional_number(const std::optional<double>& value) { return value ? number(*value) : "&ndash;"; }

// A number as an SVG coordinate: always finite (callers skip non-finite points).
std::string coordinate(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", value);
  return text;
}

// A relative path as a URL: every byte but letters, digits, "-._~/" as %XX,
// so that a file name holding '#', '?', '%' or a space still names the file.
std::string url_path(const std::string& path) {
  static const char* kHex = "0123456789ABCDEF";
  std::string url;
  for (const unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      url += static_cast<char>(c);
    } else {
      url += '%';
      url += kHex[c >> 4];
      url += kHex[c & 15];
    }
  }
  return url;
}

std::string image_tag(const std::string& path, const std::string& alt) {
  return "<img src=\"" + url_path(path) + "\" alt=\"" + html_escape(alt) +
         "\" onload=\"this.dataset.loaded=1\" onerror=\"this.dataset.failed=1\">";
}

double field(const nlohmann::json& record, const char* key) {
  const auto found = record.find(key);
  return found != record.end() && found->is_number() ? found->get<double>() : NAN;
}

// The series `key` of `records` (or of their "eval" objects) against the iteration.
Series series_of(const std::string& name, const std::vector<nlohmann::json>& records, const char* key,
                 bool in_eval = false) {
  Series series{name, {}, {}};
  for (const nlohmann::json& record : records) {
    series.x.push_back(field(record, "iteration"));
    const auto eval = record.find("eval");
    series.y.push_back(in_eval ? (eval != record.end() && eval->is_object() ? field(*eval, key) : NAN)
                               : field(record, key));
  }
  return series;
}

std::string page_head(const std::string& title) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html_escape(title) +
         "</title><style>" + kStyle + "</style></head><body>\n<h1>" + html_escape(title) + "</h1>\n";
}

void write_page(const std::string& path, const std::string& html) {
  io::write_file_atomically(path, "results page", [&](std::FILE* file) {
    return std::fwrite(html.data(), 1, html.size(), file) == html.size();
  });
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : io::printable(text)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_chart(const std::string& title, const std::vector<Series>& series, const std::string& x_label) {
  constexpr double kWidth = 420, kHeight = 220, kLeft = 56, kRight = 12, kTop = 26, kBottom = 34;
  double x_low = INFINITY, x_high = -INFINITY, y_low = INFINITY, y_high = -INFINITY;
  for (const Series& line : series)
    for (size_t i = 0; i < std::min(line.x.size(), line.y.size()); ++i) {
      if (!std::isfinite(line.x[i]) || !std::isfinite(line.y[i])) continue;
      x_low = std::min(x_low, line.x[i]);
      x_high = std::max(x_high, line.x[i]);
      y_low = std::min(y_low, line.y[i]);
      y_high = std::max(y_high, line.y[i]);
    }
  const bool empty = !(x_low <= x_high);
  if (empty) x_low = y_low = 0, x_high = y_high = 1;
  if (x_low == x_high) x_high = x_low + 1;
  if (y_low == y_high) {  // a constant (a learning rate): a band of 10 % around it
    const double margin = y_low == 0 ? 1.0 : std::fabs(y_low) * 0.1;
    y_low -= margin;
    y_high += margin;
  }
  const double plot_width = kWidth - kLeft - kRight, plot_height = kHeight - kTop - kBottom;
  const auto to_x = [&](double x) { return kLeft + (x - x_low) / (x_high - x_low) * plot_width; };
  const auto to_y = [&](double y) { return kTop + (y_high - y) / (y_high - y_low) * plot_height; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << ' ' << kHeight << "\" role=\"img\" aria-label=\"" << html_escape(title)
      << "\" font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"" << kLeft << "\" y=\"15\" font-size=\"13\">"
      << html_escape(title) << "</text>\n";
  // Five ticks on each axis, with grid lines across; an x label that repeats
  // the one before (a range of a few iterations) is left out.
  std::string last_x_label;
  for (int t = 0; t <= 4; ++t) {
    const double y = y_low + (y_high - y_low) * t / 4, x = x_low + (x_high - x_low) * t / 4;
    svg << "<line x1=\"" << kLeft << "\" x2=\"" << kLeft + plot_width << "\" y1=\"" << coordinate(to_y(y))
        << "\" y2=\"" << coordinate(to_y(y)) << "\" stroke=\"#e4e4e4\"/><text x=\"" << kLeft - 4 << "\" y=\""
        << coordinate(to_y(y) + 4) << "\" text-anchor=\"end\">" << number(y) << "</text>\n";
    const std::string x_text = number(std::round(x));
    if (x_text == last_x_label) continue;
    last_x_label = x_text;
    svg << "<text x=\"" << coordinate(to_x(x)) << "\" y=\"" << kTop + plot_height + 14
        << "\" text-anchor=\"middle\">" << x_text << "</text>\n";
  }
  svg << "<rect x=\"" << kLeft << "\" y=\"" << kTop << "\" width=\"" << plot_width << "\" height=\"" << plot_height
      << "\" fill=\"none\" stroke=\"#444\"/>\n<text x=\"" << kLeft + plot_width / 2 << "\" y=\"" << kHeight - 4
      << "\" text-anchor=\"middle\">" << html_escape(x_label) << "</text>\n";
  if (empty) svg << "<text x=\"" << kLeft + 10 << "\" y=\"" << kTop + 20 << "\">no values yet</text>\n";
  for (size_t s = 0; s < series.size(); ++s) {
    const Series& line = series[s];
    const char* colour = kColours[s % std::size(kColours)];
    // A path whose pen lifts at every non-finite value.
    std::string path;
    bool pen_down = false;
    for (size_t i = 0; i < std::min(line.x.size(), line.y.size()); ++i) {
      if (!std::isfinite(line.x[i]) || !std::isfinite(line.y[i])) {
        pen_down = false;
        continue;
      }
      path += (pen_down ? "L" : "M") + coordinate(to_x(line.x[i])) + "," + coordinate(to_y(line.y[i])) + " ";
      pen_down = true;
    }
    if (!path.empty())
      svg << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"1.5\"/>\n";
    // Few points (a short run, rare evaluations) are marked, so one alone is seen.
    if (std::count(path.begin(), path.end(), ' ') <= 30) {
      for (size_t i = 0; i < std::min(line.x.size(), line.y.size()); ++i)
        if (std::isfinite(line.x[i]) && std::isfinite(line.y[i]))
          svg << "<circle cx=\"" << coordinate(to_x(line.x[i])) << "\" cy=\"" << coordinate(to_y(line.y[i]))
              << "\" r=\"2.5\" fill=\"" << colour << "\"/>\n";
    }
    if (series.size() > 1)
      svg << "<text x=\"" << kLeft + plot_width - 4 << "\" y=\"" << kTop + 14 + 13 * s << "\" text-anchor=\"end\" fill=\""
          << colour << "\">" << html_escape(line.name) << "</text>\n";
  }
  svg << "</svg>";
  return svg.str();
}

void write_run_page(const std::string& path, const RunPage& page) {
  std::ostringstream html;
  html << page_head(page.title) << "<p>" << html_escape(page.status) << "</p>\n<h2>Losses</h2>\n<div class=\"charts\">\n";
  const std::vector<nlohmann::json>& t = page.training_records;
  const std::vector<std::vector<Series>> charts = {
      {series_of("G adversarial", t, "loss_G_adv")},
      {series_of("G L1", t, "loss_L1")},
      {series_of("D", t, "loss_D")},
      {series_of("D real", t, "loss_D_real"), series_of("D fake", t, "loss_D_fake")},
      {series_of("learning rate", t, "lr")},
      {series_of("seconds per iteration", t, "seconds_per_iteration")}};
  for (const std::vector<Series>& chart : charts) {
    const std::string title = chart.size() == 1 ? chart[0].name : chart[0].name + " and " + chart[1].name;
    html << svg_chart(title, chart, "iteration") << "\n";
  }
  html << "</div>\n";
  if (!page.eval_records.empty()) {
    const std::vector<nlohmann::json>& e = page.eval_records;
    html << "<h2>Evaluation on the test split</h2>\n<div class=\"charts\">\n"
         << svg_chart("mean L1", {series_of("L1", e, "l1", true)}, "iteration") << "\n"
         << svg_chart("mean PSNR (dB)", {series_of("PSNR", e, "psnr", true)}, "iteration") << "\n"
         << svg_chart("mean SSIM", {series_of("SSIM", e, "ssim", true)}, "iteration") << "\n</div>\n"
         << "<table><tr><th>iteration</th><th>images</th><th>L1</th><th>PSNR (dB)</th><th>SSIM</th></tr>\n";
    for (auto record = e.rbegin(); record != e.rend(); ++record) {
      const nlohmann::json& eval = (*record)["eval"];
      html << "<tr><td>" << number(field(*record, "iteration")) << "</td><td>" << number(field(eval, "images"))
           << "</td><td>" << number(field(eval, "l1")) << "</td><td>"
           << (eval.contains("psnr") && eval["psnr"] == "inf" ? "inf" : number(field(eval, "psnr"))) << "</td><td>"
           << number(field(eval, "ssim")) << "</td></tr>\n";
    }
    html << "</table>\n";
  }
  std::vector<Snapshot> snapshots = page.snapshots;
  std::sort(snapshots.begin(), snapshots.end(),
            [](const Snapshot& a, const Snapshot& b) { return a.iteration > b.iteration; });
  html << "<h2>Previews: input | generated | ground truth</h2>\n";
  if (snapshots.empty()) html << "<p>No snapshot yet.</p>\n";
  for (const Snapshot& snapshot : snapshots) {
    const std::string caption =
        "iteration " + std::to_string(snapshot.iteration) + " (epoch " + std::to_string(snapshot.epoch) + ")";
    html << "<div class=\"snapshot\"><h3>" << caption << "</h3>" << image_tag(snapshot.image, caption) << "</div>\n";
  }
  html << "<h2>Options</h2>\n<table>\n";
  if (page.options.is_object())
    for (const auto& [key, value] : page.options.items())
      html << "<tr><th>" << html_escape(key) << "</th><td>"
           << html_escape(value.is_string() ? value.get<std::string>() : value.dump()) << "</td></tr>\n";
  html << "</table>\n</body></html>\n";
  write_page(path, html.str());
}

void write_test_page(const std::string& path, const TestPage& page) {
  std::ostringstream html;
  html << page_head(page.title) << "<p>checkpoint: " << html_escape(page.checkpoint) << "<br>" << page.rows.size()
       << " image(s)";
  if (page.mean_l1)
    html << "; mean L1 " << optional_number(page.mean_l1) << ", PSNR " << optional_number(page.mean_psnr)
         << " dB, SSIM " << optional_number(page.mean_ssim);
  html << "</p>\n";
  if (!page.skipped.empty()) {
    html << "<p>" << page.skipped.size() << " input(s) could not be translated:</p>\n<ul>\n";
    for (const std::string& reason : page.skipped) html << "<li>" << html_escape(reason) << "</li>\n";
    html << "</ul>\n";
  }
  html << "<table>\n<tr><th>name</th><th>input</th><th>generated</th>";
  const bool truths = std::any_of(page.rows.begin(), page.rows.end(), [](const TestRow& r) { return !r.truth.empty(); });
  if (truths) html << "<th>ground truth</th><th>L1</th><th>PSNR (dB)</th><th>SSIM</th>";
  html << "</tr>\n";
  for (const TestRow& row : page.rows) {
    html << "<tr><td>" << html_escape(row.name) << "</td><td>" << image_tag(row.input, row.name + " input")
         << "</td><td>" << image_tag(row.generated, row.name + " generated") << "</td>";
    if (truths) {
      html << "<td>" << (row.truth.empty() ? "&ndash;" : image_tag(row.truth, row.name + " ground truth"))
           << "</td><td>" << optional_number(row.l1) << "</td><td>" << optional_number(row.psnr) << "</td><td>"
           << optional_number(row.ssim) << "</td>";
    }
    html << "</tr>\n";
  }
  html << "</table>\n</body></html>\n";
  write_page(path, html.str());
}

}  // namespace pixgrad::training
