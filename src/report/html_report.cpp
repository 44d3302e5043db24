#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "batching/loader.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"
#include "nn/flops.h"
#include "report/analysis.h"
#include "report/run_reader.h"
#include "scaling/charts.h"
#include "scaling/isoflop_fit.h"
#include "scaling/sweep.h"
#include "train/evaluate.h"

namespace fw {

namespace fs = std::filesystem;

namespace {
std::string esc(const std::string& s) {  // HTML text (invalid UTF-8 bytes as U+FFFD)
  std::string o;
  const std::string clean = nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string text = nlohmann::json::parse(clean).get<std::string>();
  for (char c : text) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

std::string fmt(double v, int digits = 4) {
  std::ostringstream o;
  o.precision(digits);
  o << v;
  return o.str();
}

// A chart as inline SVG, marked for the page's render check.
std::string chart(const Chart& c) {
  std::string svg = render_svg(c);
  const size_t at = svg.find("<svg ");
  if (at != std::string::npos) svg.insert(at + 5, "class=\"chart\" ");
  return svg;
}

// A horizontal bar chart (labels, values in [0, 1]) as SVG.
std::string bar_chart(const std::string& title, const std::vector<std::string>& labels, const std::vector<double>& v,
                      const std::vector<std::string>& notes) {
  const double W = 720, row = 24, left = 120, top = 40, bar = 420;
  const double H = top + row * double(labels.size()) + 30;
  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\"><rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << esc(title) << "</text>";
  for (size_t i = 0; i < labels.size(); i++) {
    const double y = top + row * double(i);
    o << "<text x=\"" << left - 8 << "\" y=\"" << y + 16 << "\" text-anchor=\"end\">" << esc(labels[i]) << "</text>"
      << "<rect x=\"" << left << "\" y=\"" << y + 4 << "\" width=\"" << std::max(1.0, bar * v[i]) << "\" height=\""
      << row - 8 << "\" fill=\"#1f77b4\"><title>" << esc(labels[i]) << ": " << fmt(100 * v[i], 3) << "%</title></rect>"
      << "<text x=\"" << left + bar * v[i] + 6 << "\" y=\"" << y + 16 << "\">" << fmt(100 * v[i], 3) << "% "
      << esc(notes[i]) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

double median_tokens_per_s(const RunInfo& r) {
  std::vector<double> v;
  for (const auto& m : r.metrics)
    if (m.tokens_per_s > 0) v.push_back(m.tokens_per_s);
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

std::string kind_of(const ModelConfig& m) {
  std::string k = m.mod.enabled ? "MoD" : "dense";
  if (m.mlp != MlpKind::dense) k += std::string(" + ") + name_of(m.mlp);
  return k;
}

// Loss against training FLOPs (log) or wall seconds, validation points where logged.
std::string loss_charts(const std::vector<RunInfo>& runs) {
  Chart by_flops{"validation loss against training FLOPs", "training FLOPs", "loss (nats/token)", true, false, {}};
  Chart by_time{"validation loss against training time", "seconds of training", "loss (nats/token)", false, false, {}};
  int color = 0;
  for (const auto& r : runs) {
    ChartSeries f{r.name, {}, {}, true, color}, t{r.name, {}, {}, true, color};
    for (const auto& m : r.metrics) {
      if (!m.has_val()) continue;
      f.x.push_back(m.flops), f.y.push_back(m.val_loss);
      if (std::isfinite(m.seconds)) t.x.push_back(m.seconds), t.y.push_back(m.val_loss);
    }
    if (!f.x.empty()) by_flops.series.push_back(f);
    if (!t.x.empty()) by_time.series.push_back(t);
    color++;
  }
  std::string out;
  if (!by_flops.series.empty()) out += chart(by_flops);
  if (!by_time.series.empty()) out += chart(by_time);
  return out.empty() ? "<p>No validation losses logged yet.</p>" : out;
}

std::string runs_table(const std::vector<RunInfo>& runs) {
  std::ostringstream o;
  o << "<table><tr><th>run</th><th>model</th><th>params</th><th>forward FLOPs/token</th><th>val loss</th>"
       "<th>val loss, causal routing</th><th>training tokens/s</th><th>sampling tokens/s (batch 1)</th>"
       "<th>training time</th><th>steps</th></tr>";
  for (const auto& r : runs) {
    const ModelConfig& m = r.config.model;
    const double fwd = count_flops(m, r.config.train.seq_len).forward_per_token();
    double val = NAN;
    for (const auto& row : r.metrics)
      if (row.has_val()) val = row.val_loss;
    const auto& s = r.summary;
    const auto num = [&](const char* k, int d) {  // d = 0: a whole number
      if (!s.is_object() || !s.contains(k)) return std::string("–");
      return d > 0 ? fmt(s[k].get<double>(), d) : std::to_string(std::lround(s[k].get<double>()));
    };
    o << "<tr><td>" << esc(r.name) << "</td><td>" << esc(kind_of(m)) << ", " << m.n_layers << "×" << m.d_model
      << "</td><td>" << fmt(double(Model::count_params(m)), 3) << "</td><td>" << fmt(fwd / 1e6, 4) << " M</td><td>"
      << (std::isfinite(val) ? fmt(val) : "–") << "</td><td>" << num("val_loss_causal", 4) << "</td><td>"
      << std::lround(median_tokens_per_s(r)) << "</td><td>" << num("sample_tokens_per_s", 0) << "</td><td>"
      << (std::isfinite(r.metrics.back().seconds) ? fmt(r.metrics.back().seconds, 3) + " s" : "–") << "</td><td>" << r.step
      << "</td></tr>";
  }
  o << "</table>";
  return o.str();
}
}  // namespace

// ---- per-run analyses -------------------------------------------------------------

namespace {
// The routing map: each token shaded by how many routed layers processed it, the
// router logits on hover.
std::string routing_map_html(const RoutingMap& m) {
  std::ostringstream o;
  o << "<div class=\"map\">";
  const double R = double(std::max<size_t>(1, m.layers.size()));
  for (size_t i = 0; i < m.text.size(); i++) {
    std::string tip = "processed by " + std::to_string(m.processed[i]) + " of " + std::to_string(m.layers.size()) +
                      " routed blocks; router logits:";
    for (size_t k = 0; k < m.layers.size(); k++) tip += " block " + std::to_string(m.layers[k]) + " " + fmt(m.router[i][k], 3);
    const double a = double(m.processed[i]) / R;
    std::string text = esc(m.text[i]);
    if (text == "\n") text = "↵<br>";
    o << "<span title=\"" << esc(tip) << "\" style=\"background: rgba(214,39,40," << fmt(0.08 + 0.8 * a, 3) << ")\">"
      << text << "</span>";
  }
  o << "</div><p class=\"legend\">Shade: the share of routed blocks that processed the token (pale: skipped by all). "
       "Hover a token for its router logits.</p>";
  return o.str();
}

// The run's validation tokens, or an empty list (with a note) when its data is gone.
std::vector<int32_t> val_tokens(const RunInfo& r, std::string& note) {
  if (r.data_dir.empty() || !fs::exists(fs::path(r.data_dir) / "val.bin")) {
    note = "its data folder (" + r.data_dir + ") is not here";
    return {};
  }
  return read_token_file(find_data_files(r.data_dir).val);
}

std::string mod_section(const RunInfo& r, Model& model, const ReportOptions& opt) {
  std::string note;
  const std::vector<int32_t> val = val_tokens(r, note);
  if (val.empty()) return "<p>Routing analyses skipped: " + esc(note) + ".</p>";
  std::ostringstream o;
  if (r.tokenizer != "unknown") {
    auto tok = make_tokenizer(r.tokenizer);
    const size_t n = size_t(std::min<int64_t>({opt.map_tokens, r.config.model.max_seq_len, int64_t(val.size())}));
    o << "<h3>Routing map (causal routing, as when sampling)</h3>"
      << routing_map_html(routing_map(model, *tok, std::vector<int32_t>(val.begin(), val.begin() + ptrdiff_t(n))));
  }
  const fs::path pos_path = fs::path(r.data_dir) / "val.pos.bin", meta_path = fs::path(r.data_dir) / "meta.json";
  if (fs::exists(pos_path) && fs::exists(meta_path)) {
    const auto meta = nlohmann::json::parse(std::ifstream(meta_path));
    TokenLoader loader(val, r.config.model.vocab_size, "val.bin");
    const PosRouting p = routing_by_pos(model, loader, read_token_file(pos_path.string()),
                                        meta.at("pos_tags").get<std::vector<std::string>>(), opt.analysis_tokens,
                                        r.config.train.seq_len);
    std::vector<std::string> notes;
    for (auto t : p.tokens) notes.push_back("(" + std::to_string(t) + " tokens)");
    o << "<h3>Which kinds of words get compute</h3>"
      << bar_chart("share of routed blocks that process a token, by word class (Brown tags)", p.classes, p.processed,
                   notes);
  }
  return o.str();
}

std::string fff_section(const RunInfo& r, Model& model, const ReportOptions& opt) {
  std::string note;
  const std::vector<int32_t> val = val_tokens(r, note);
  if (val.empty()) return "<p>Tree usage skipped: " + esc(note) + ".</p>";
  const TrainConfig& tc = r.config.train;
  TokenLoader loader(val, r.config.model.vocab_size, "val.bin");
  Activations acts(model, tc.micro_batch(), tc.seq_len, false);
  const EvalResult e = evaluate(model, acts, loader, std::min<int64_t>(opt.analysis_tokens, loader.size() - 1));
  const MlpShape s = r.config.model.mlp_shape();
  Chart c{"share of each tree level's neurons that tokens reach", "level (0 = root)", "share of neurons reached",
          false, false, {}};
  const auto usage = fff_level_usage(s, e.tree_visits);
  for (size_t l = 0; l < usage.size(); l++) {
    ChartSeries ser{"block " + std::to_string(l), {}, {}, true, int(l)};
    for (size_t d = 0; d < usage[l].size(); d++) ser.x.push_back(double(d)), ser.y.push_back(usage[l][d]);
    c.series.push_back(ser);
  }
  return "<h3>FFF node usage by tree level (" + std::to_string(e.tokens) + " validation tokens)</h3>" + chart(c);
}

std::string sweep_section(const std::string& dir) {
  const auto runs = read_sweep_csv((fs::path(dir) / "runs.csv").string());
  std::map<std::string, std::vector<RunRecord>> by_variant;
  for (const auto& r : runs)
    if (std::isfinite(r.loss)) by_variant[r.variant].push_back({r.params, r.tokens, r.flops, r.loss});
  std::vector<std::pair<std::string, IsoflopFit>> fits;
  std::ostringstream o;
  o << "<h2>Sweep " << esc(fs::weakly_canonical(dir).filename().string()) << " (" << runs.size() << " runs)</h2>";
  for (const auto& [variant, recs] : by_variant) {
    try {
      fits.push_back({variant, fit_isoflop(recs)});
      const IsoflopFit& f = fits.back().second;
      o << "<p>" << esc(variant) << ": N_opt ∝ C^" << fmt(f.n_opt.exponent, 3) << ", D_opt ∝ C^" << fmt(f.d_opt.exponent, 3) << "; minima:";
      for (const auto& m : f.minima) o << " C " << fmt(m.flops, 2) << " → N_opt " << fmt(m.n_opt, 3) << " (loss " << fmt(m.loss) << ");";
      o << "</p>";
    } catch (const Error& e) {
      o << "<p>" << esc(variant) << ": no fit (" << esc(e.what()) << ")</p>";
    }
  }
  if (!fits.empty()) o << chart(isoflop_chart(fits)) << chart(n_opt_chart(fits));
  // the tuning stage, when the sweep had one: loss against learning rate per size
  const auto tuning_rows = read_sweep_csv((fs::path(dir) / "tuning.csv").string());
  std::vector<VariantTuning> tunings;
  for (const auto& row : tuning_rows) {
    auto it = std::find_if(tunings.begin(), tunings.end(), [&](const VariantTuning& t) { return t.variant == row.variant; });
    if (it == tunings.end()) it = tunings.insert(tunings.end(), VariantTuning{row.variant, {}, {}, {}, 0.95, {}});
    it->runs.push_back(row);
  }
  for (auto& t : tunings) {
    std::vector<double> beta2s;  // in the order the search tried them: the rate search's first
    for (const auto& r : t.runs)
      if (std::find(beta2s.begin(), beta2s.end(), r.beta2) == beta2s.end()) beta2s.push_back(r.beta2);
    analyse_tuning(t, beta2s);
    o << "<p>" << esc(t.variant) << " tuning: lr_opt(N) = " << fmt(t.lr_law.coefficient, 3) << " · N^"
      << fmt(t.lr_law.exponent, 3) << " through " << t.sizes.size() << " sizes; β2 " << fmt(t.beta2, 3) << "</p>";
  }
  if (!tunings.empty()) o << chart(tuning_chart(tunings));
  return o.str();
}

const char* kStyle =
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}svg.chart{display:block;margin:1em 0}"
    ".map{font-family:monospace;white-space:pre-wrap;line-height:1.7;border:1px solid #ddd;padding:8px}"
    ".map span{border-radius:2px}.legend{font-size:12px;color:#555}.problem{color:#a00}";

// Marks the page for tests: how many charts drew something, and any script errors.
const char* kCheckScript =
    "<script>window.addEventListener('error',function(){document.body.dataset.errors="
    "String(Number(document.body.dataset.errors||0)+1)});window.addEventListener('load',function(){"
    "var s=document.querySelectorAll('svg.chart'),n=0;for(var i=0;i<s.length;i++){var b=s[i].getBBox();"
    "if(s[i].childElementCount>2&&b.width>0&&b.height>0)n++}document.body.dataset.charts=String(s.length);"
    "document.body.dataset.chartsDrawn=String(n)});</script>";
}  // namespace

// A MoD or FFF run's analyses, as a section of the page ("" for other runs).
static std::string analysis_section(const RunInfo& r, const ReportOptions& opt, Report& rep) {
  const ModelConfig& m = r.config.model;
  if (!m.mod.enabled && m.mlp != MlpKind::fff) return "";
  std::ostringstream o;
  o << "<h2>" << esc(r.name) << " (" << esc(kind_of(m)) << ")</h2>";
  try {
    if (m.mod.enabled) o << mod_section(r, *r.model, opt);
    if (m.mlp == MlpKind::fff) o << fff_section(r, *r.model, opt);
  } catch (const Error& e) {
    o << "<p class=\"problem\">Analysis failed: " << esc(e.what()) << "</p>";
    rep.problems.push_back(e.what());
  }
  return o.str();
}

Report build_report(const std::vector<std::string>& dirs, const ReportOptions& opt) {
  Report rep;
  std::vector<RunInfo> runs;
  std::string sweeps, analyses;
  for (const auto& d : dirs) {
    try {
      if (is_sweep_dir(d)) {
        sweeps += sweep_section(d);
        rep.sweeps++;
      } else {
        runs.push_back(read_run(d));
        analyses += analysis_section(runs.back(), opt, rep);
        runs.back().model.reset();  // analysed: one run's weights in memory at a time
      }
    } catch (const Error& e) {
      rep.problems.push_back(e.what());
    }
  }
  std::ostringstream body;
  if (!runs.empty()) body << "<h2>Runs</h2>" << runs_table(runs) << loss_charts(runs);
  body << analyses << sweeps;
  rep.runs = int(runs.size());
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << esc(opt.title) << "</title><style>" << kStyle
    << "</style></head><body><h1>" << esc(opt.title) << "</h1>";
  if (!rep.problems.empty()) {
    o << "<h2>Left out</h2><ul>";
    for (const auto& p : rep.problems) o << "<li class=\"problem\">" << esc(p) << "</li>";
    o << "</ul>";
  }
  o << body.str() << kCheckScript << "</body></html>\n";
  rep.html = o.str();
  return rep;
}

}  // namespace fw
