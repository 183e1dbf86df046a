// The results pages: every image referenced, names from files escaped,
// snapshots newest first, each chart scaled to its own values, no
// non-finite number in an SVG coordinate, written without a temporary left.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <pixgrad/training/html_report.h>
#include "tiny_run.h"

using namespace pixgrad;
using namespace pixgrad::training;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// The y coordinates of the first <path> in an SVG chart.
std::vector<double> path_ys(const std::string& svg) {
  const std::smatch path = [&] {
    std::smatch m;
    REQUIRE(std::regex_search(svg, m, std::regex("<path d=\"([^\"]*)\"")));
    return m;
  }();
  std::vector<double> ys;
  const std::string d = path[1];
  const std::regex point("[ML](-?[0-9.]+),(-?[0-9.]+)");
  for (auto it = std::sregex_iterator(d.begin(), d.end(), point); it != std::sregex_iterator(); ++it)
    ys.push_back(std::stod((*it)[2]));
  return ys;
}

}  // namespace

TEST_CASE("a chart spans its own values: an L1 around 0.3 fills the height", "[report]") {
  Series l1{"G L1", {}, {}};
  for (int i = 0; i < 50; ++i) {
    l1.x.push_back(100.0 * i);
    l1.y.push_back(0.30 - 0.001 * i);
  }
  const std::vector<double> ys = path_ys(svg_chart("G L1", {l1}, "iteration"));
  REQUIRE(ys.size() == 50);
  const auto [low, high] = std::minmax_element(ys.begin(), ys.end());
  CHECK(*high - *low > 150);  // of a 160-pixel plot area
}

TEST_CASE("non-finite values leave gaps, never NaN or inf in the drawing", "[report]") {
  Series loss{"D", {0, 1, 2, 3, 4}, {1.0, NAN, INFINITY, 2.0, 3.0}};
  const std::string svg = svg_chart("D", {loss}, "iteration");
  CHECK(path_ys(svg).size() == 3);
  std::smatch d;
  REQUIRE(std::regex_search(svg, d, std::regex("<path d=\"([^\"]*)\"")));
  CHECK(std::string(d[1]).find("nan") == std::string::npos);
  CHECK(std::string(d[1]).find("inf") == std::string::npos);
  CHECK(std::count(d[1].first, d[1].second, 'M') == 2);  // the pen lifts once, at the gap
  CHECK_THAT(svg_chart("empty", {Series{"x", {}, {}}}, "iteration"), Contains("no values yet"));
}

TEST_CASE("a run's page lists every snapshot newest first, escapes names, and leaves no temporary", "[report]") {
  const fs::path folder = testing::fresh_folder("results_page");
  fs::create_directories(folder);
  RunPage page;
  page.title = "run <script>alert(1)</script> & co";
  page.options = {{"dataset", "data/<b>odd</b>"}, {"epochs", 200}};
  for (int i = 1; i <= 3; ++i)
    page.training_records.push_back({{"iteration", 100 * i}, {"loss_G", 3.0}, {"loss_G_adv", 2.5},
                                     {"loss_L1", 0.3}, {"loss_D", 0.6}, {"lr", 2e-4}});
  page.eval_records.push_back({{"iteration", 300}, {"eval", {{"images", 4}, {"l1", 0.3}, {"psnr", "inf"}, {"ssim", 0.5}}}});
  page.snapshots = {{100, 1, "previews/iter_00000100.png"}, {300, 1, "previews/iter_00000300.png"},
                    {200, 1, "previews/iter_00000200.png"}};
  page.status = "running: iteration 300 of 1000";
  const std::string path = (folder / "index.html").string();
  write_run_page(path, page);
  const std::string html = read_text(path);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<b>odd") == std::string::npos);
  CHECK_THAT(html, Contains("&lt;script&gt;") && Contains("&amp; co"));
  const size_t newest = html.find("iter_00000300.png"), middle = html.find("iter_00000200.png"),
               oldest = html.find("iter_00000100.png");
  REQUIRE(oldest != std::string::npos);
  CHECK(newest < middle);
  CHECK(middle < oldest);
  CHECK_THAT(html, Contains("<td>inf</td>"));  // an infinite PSNR is shown as such
  CHECK(std::count(html.begin(), html.end(), '\n') > 10);
  fs::remove_all(folder);
}

TEST_CASE("a test page holds a row per image with its metrics and the means", "[report]") {
  const fs::path folder = testing::fresh_folder("test_page");
  fs::create_directories(folder);
  TestPage page;
  page.title = "results";
  page.checkpoint = "out/run/checkpoint.safetensors";
  page.rows = {{"a", "images/a_input.png", "a.png", "images/a_truth.png", 0.25, INFINITY, 0.75},
               {"b\"<", "images/b_input.png", "b.png", "images/b_truth.png", 0.5, 20.0, 0.5}};
  page.mean_l1 = 0.375;
  page.mean_psnr = INFINITY;
  page.mean_ssim = 0.625;
  write_test_page((folder / "index.html").string(), page);
  const std::string html = read_text(folder / "index.html");
  for (const char* image : {"images/a_input.png", "a.png", "images/a_truth.png", "images/b_truth.png"})
    CHECK_THAT(html, Contains(std::string("src=\"") + image + "\""));
  CHECK_THAT(html, Contains("b&quot;&lt;") && Contains("0.375") && Contains("inf") && Contains("0.625"));
  // A name with '#', '?' or a space is percent-encoded in the link, or the browser would cut it short.
  page.rows = {{"door #1?", "images/door #1?_input.png", "door #1?.png", "", {}, {}, {}}};
  write_test_page((folder / "index.html").string(), page);
  CHECK_THAT(read_text(folder / "index.html"), Contains("src=\"images/door%20%231%3F_input.png\""));
  CHECK(std::count(html.begin(), html.end(), '\n') > 5);
  CHECK(html.find("nan") == std::string::npos);
  fs::remove_all(folder);
}
