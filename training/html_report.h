// Results pages for people: self-contained HTML (inline SVG charts, images
// beside the page by relative path, no network), one for a training run
// (out/NAME/index.html) and one for a test run of pix2pix_translate. Every
// text from files or options is escaped. Each image reports whether it
// loaded (data-loaded / data-failed), so a headless browser can check the
// page (tools/check_html_page.sh). Pages are written atomically.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <pixgrad/training/preview.h>

namespace pixgrad::training {

std::string html_escape(const std::string& text);
// One chart: each series' line on a shared y range from the finite values,
// x = iteration, with tick labels. Non-finite values leave gaps.
std::string svg_chart(const std::string& title, const std::vector<Series>& series, const std::string& x_label);

struct Snapshot {
  int64_t iteration = 0;
  int64_t epoch = 0;  // counted from 1
  std::string image;  // path relative to the page
};

struct RunPage {
  std::string title;
  nlohmann::json options;                        // a two-column table
  std::vector<nlohmann::json> training_records;  // log.jsonl training records
  std::vector<nlohmann::json> eval_records;      // log.jsonl records with "eval"
  std::vector<Snapshot> snapshots;               // shown newest first
  std::string status;                            // one line
};
// index.html of a training run: status, a chart per loss (each on its own
// scale), the evaluation metrics over iterations (charts and a table), every
// snapshot's preview grid newest first, the options.
void write_run_page(const std::string& path, const RunPage& page);

struct TestRow {
  std::string name, input, generated, truth;  // image paths relative to the page; truth "" = none
  std::optional<double> l1, psnr, ssim;
};
struct TestPage {
  std::string title, checkpoint;
  std::vector<TestRow> rows;
  std::optional<double> mean_l1, mean_psnr, mean_ssim;
  std::vector<std::string> skipped;  // inputs that could not be translated, with the reason
};
// index.html of a test run: the checkpoint, the means, and a row per image
// of input | generated | truth with its metrics.
void write_test_page(const std::string& path, const TestPage& page);

}  // namespace pixgrad::training
