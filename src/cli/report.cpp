// flopwise report: runs and sweeps → one self-contained HTML file.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "formats/atomic_file.h"
#include "report/html_report.h"

namespace fw::cli {

namespace {
struct ReportFlags {
  std::vector<std::string> dirs;
  std::string out = "report.html";
  ReportOptions options;
  CommonFlags common;
};

void run_report(const ReportFlags& f) {
  f.common.apply();
  FW_CHECK(f.options.analysis_tokens >= 128, "--analysis-tokens must be at least 128");
  const Report r = build_report(f.dirs, f.options);
  write_file_atomic(f.out, r.html);
  for (const auto& p : r.problems) note("report: left out: " + p);
  if (f.common.json)
    print_json({{"report", f.out}, {"runs", r.runs}, {"sweeps", r.sweeps}, {"problems", r.problems}});
  else
    std::printf("wrote %s: %d run%s, %d sweep%s\n", f.out.c_str(), r.runs, r.runs == 1 ? "" : "s", r.sweeps,
                r.sweeps == 1 ? "" : "s");
  FW_CHECK(r.problems.empty(), "report: ", r.problems.size(), " of ", f.dirs.size(),
           " folders left out (listed above); ", f.out, " covers the rest");
}
}  // namespace

void register_report(CLI::App& app) {
  auto f = std::make_shared<ReportFlags>();
  auto* sub = app.add_subcommand("report", "one self-contained HTML report of runs and sweeps");
  sub->add_option("dirs", f->dirs, "run folders and sweep folders")->required();
  sub->add_option("-o,--out", f->out, "the HTML file to write (default report.html)");
  sub->add_option("--analysis-tokens", f->options.analysis_tokens, "validation tokens for routing and tree analyses");
  sub->add_option("--title", f->options.title, "the page title");
  f->common.add(sub);
  sub->callback([f]() { run_report(*f); });
}

}  // namespace fw::cli
