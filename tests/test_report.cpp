// The report and the demo: a self-contained HTML page with every chart for dense, MoD,
// FFF runs and a sweep, damaged folders named while the rest is still reported; the
// page renders in headless Chromium; `flopwise demo` runs end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "corpus/brown.h"
#include "report/analysis.h"
#include "test_util.h"

using namespace fw;
namespace fs = std::filesystem;

namespace {
const std::string kBrown = std::string(FLOPWISE_SOURCE_DIR) + "/data/brown-src";

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) n++;
  return n;
}

// Brown with bytes, and three tiny runs on it (dense, MoD, FFF) plus a sweep folder;
// made once for the tests below.
struct Fixture {
  std::string dir, data;
  Fixture() {
    dir = test::temp_dir("report");
    data = dir + "/brown";
    auto p = test::flopwise("prepare --brown " + kBrown + " --out " + data);
    EXPECT_EQ(p.code, 0) << p.out;
    const std::string cfg =
        " --set model.d_model=32 --set model.n_layers=2 --set model.n_heads=2 --set model.max_seq_len=64"
        " --set train.seq_len=64 --set train.batch_size=4 --set train.steps=30 --set train.warmup=3"
        " --set train.eval_every=10 --set train.eval_tokens=512 --set train.ckpt_every=0";
    for (const auto& [name, sets] : std::vector<std::pair<std::string, std::string>>{
             {"dense", ""}, {"mod", " --set mod.enabled=true"}, {"fff", " --set model.mlp=fff --set fff.depth=3"}}) {
      auto t = test::flopwise("train --data " + data + " --out " + dir + "/" + name + cfg + sets);
      EXPECT_EQ(t.code, 0) << t.out;
    }
    // a sweep's runs.csv from a known law: 3 budgets × 6 sizes around its optima
    fs::create_directories(dir + "/sweep");
    std::ofstream csv(dir + "/sweep/runs.csv");
    csv << "variant,layers,d_model,params,flops,tokens,steps,loss,run\n";
    for (double C : {1e12, 3e12, 1e13})
      for (double N : {5e4, 1e5, 2e5, 4e5, 8e5, 1.6e6}) {
        const double D = C / (6 * N);
        csv << "dense,2,64," << N << "," << C << "," << D << ",10," << 1.5 + 400 / std::pow(N, 0.34) + 400 / std::pow(D, 0.28)
            << ",r\n";
      }
  }
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}
}  // namespace

TEST(Report, EverySectionAndDamagedFoldersNamed) {
  const auto& f = fixture();
  // a damaged run: metrics.jsonl cut mid-row; a folder that is no run
  fs::copy(f.dir + "/dense", f.dir + "/cut", fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::string m = test::slurp(f.dir + "/cut/metrics.jsonl");
  std::ofstream(f.dir + "/cut/metrics.jsonl", std::ios::trunc) << m.substr(0, m.size() - 20);
  fs::create_directories(f.dir + "/empty");
  const std::string out = f.dir + "/report.html";
  auto r = test::flopwise("report " + f.dir + "/dense " + f.dir + "/mod " + f.dir + "/fff " + f.dir + "/sweep " +
                          f.dir + "/empty " + f.dir + "/cut -o " + out);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("wrote " + out + ": 3 runs, 1 sweep"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("empty: not a run folder (no model.safetensors)"), std::string::npos) << r.out;
  const size_t rows = count(m, "\n");
  EXPECT_NE(r.out.find("cut/metrics.jsonl:" + std::to_string(rows) + ": not a metrics row"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("report: 2 of 6 folders left out"), std::string::npos) << r.out;
  const std::string html = test::slurp(out);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no network: only the SVG namespace
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(count(html, "<tr><td>"), 3u);  // one table row per intact run
  for (const char* s : {"validation loss against training FLOPs", "validation loss against training time",
                        "Routing map", "Which kinds of words get compute", "FFF node usage by tree level", "Sweep sweep",
                        "N_opt ∝ C^", "Left out"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  // loss ×2, POS bars, FFF levels, isoFLOP + N_opt
  EXPECT_EQ(count(html, "<svg class=\"chart\""), 6u);
  // the routing map: a span per token with the router logits on hover
  EXPECT_GT(count(html, "routed blocks; router logits: block 1 "), 50u);
  // the known law's exponent comes back: a = β/(α+β) = 0.452
  const size_t at = html.find("dense: N_opt ∝ C^");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NEAR(std::stod(html.substr(at + std::string("dense: N_opt ∝ C^").size(), 6)), 0.452, 0.02);
}

// Word classes: the tags the Brown POS files carry map onto the classes the chart shows.
TEST(Report, BrownTagsToWordClasses) {
  EXPECT_EQ(pos_class("nn"), "noun");
  EXPECT_EQ(pos_class("nps$"), "noun");
  EXPECT_EQ(pos_class("vbd"), "verb");
  EXPECT_EQ(pos_class("bedz*"), "verb");
  EXPECT_EQ(pos_class("md*"), "verb");
  EXPECT_EQ(pos_class("at"), "determiner");
  EXPECT_EQ(pos_class("in"), "preposition");
  EXPECT_EQ(pos_class("pps+bez"), "pronoun");
  EXPECT_EQ(pos_class("''"), "punctuation");
  EXPECT_EQ(pos_class("cd"), "number");
  EXPECT_EQ(pos_class("none"), "none");
  EXPECT_EQ(pos_class("uh"), "other");
}

// The page in a real browser: every chart drew, no script errors; a screenshot is kept
// beside it. Runs when Chromium is installed (.ci/run installs Debian's chromium).
TEST(Report, RendersInHeadlessChromium) {
  const char* candidates[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"};
  std::string chromium;
  for (const char* c : candidates)
    if (fs::exists(c)) chromium = c;
  if (chromium.empty()) GTEST_SKIP() << "Chromium is not installed (apt-get install chromium)";
  const auto& f = fixture();
  const std::string out = f.dir + "/render.html";
  auto r = test::flopwise("report " + f.dir + "/dense " + f.dir + "/mod " + f.dir + "/fff " + f.dir + "/sweep -o " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string flags = " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=" + f.dir +
                            "/chromium-profile ";
  const std::string dom = f.dir + "/dom.html", log = f.dir + "/chromium.log";
  const int rc = std::system((chromium + flags + "--enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom file://" +
                              out + " > " + dom + " 2> " + log).c_str());
  ASSERT_EQ(rc, 0) << test::slurp(log);
  const std::string d = test::slurp(dom);
  EXPECT_NE(d.find("data-charts=\"6\""), std::string::npos) << d.substr(0, 400);
  EXPECT_NE(d.find("data-charts-drawn=\"6\""), std::string::npos) << d.substr(0, 400);
  EXPECT_EQ(d.find("data-errors"), std::string::npos);
  const std::string console = test::slurp(log);
  EXPECT_EQ(console.find("Uncaught"), std::string::npos) << console;
  const std::string shot = f.dir + "/report.png";
  std::system((chromium + flags + "--window-size=1100,2600 --screenshot=" + shot + " file://" + out + " > /dev/null 2>&1").c_str());
  EXPECT_TRUE(fs::exists(shot) && fs::file_size(shot) > 10000) << "no screenshot at " << shot;
}

// The main job at a tiny budget: three runs, one table, a report, the same FLOPs each.
// A fixed budget, not the minutes' plan: that one follows the measured matmul speed,
// which on a loaded machine (or under a sanitizer) leaves every model at the 20-step floor.
TEST(Report, DemoEndToEnd) {
  const std::string dir = test::temp_dir("demo");
  auto r = test::flopwise("demo --budget 1.5e12 --eval-tokens 1024 --out " + dir + "/demo --data-root " + dir +
                          "/data --brown " + kBrown + " --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = test::last_json_line(r.out);
  ASSERT_EQ(j["runs"].size(), 3u);
  for (const auto& run : j["runs"]) {
    EXPECT_TRUE(std::isfinite(run["val_loss"].get<double>()));
    EXPECT_GT(run["sample_tokens_per_s"].get<double>(), 0);
    EXPECT_EQ(run["sample"].get<std::string>().rfind("The jury said", 0), 0u);
  }
  // cheaper models take more steps of the same budget
  EXPECT_GT(j["runs"][0]["steps"].get<int64_t>(), 20) << "at the step floor: the comparison would prove nothing";
  EXPECT_LT(j["runs"][0]["steps"].get<int64_t>(), j["runs"][1]["steps"].get<int64_t>());
  EXPECT_EQ(j["budget"].get<double>(), 1.5e12);
  EXPECT_LT(j["runs"][1]["forward_flops_per_token"].get<double>(), j["runs"][0]["forward_flops_per_token"].get<double>());
  EXPECT_TRUE(fs::exists(dir + "/demo/report.html"));
  EXPECT_NE(test::slurp(dir + "/demo/demo.md").find("| MoD + FFF"), std::string::npos);
}
