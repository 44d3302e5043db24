#include "cli/common.h"

#include <cstdio>
#include <iostream>

#include "core/threads.h"

namespace fw::cli {

void ConfigFlags::add(CLI::App* sub) {
  sub->add_option("--config", file, "JSON config file (sections: model, train)");
  sub->add_option("--set", sets, "override one field: section.key=value (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

Config ConfigFlags::build() const {
  Config c;
  if (!file.empty()) apply_config_file(c, file);
  for (const auto& s : sets) apply_set(c, s);
  c.validate();
  return c;
}

void CommonFlags::add(CLI::App* sub) {
  sub->add_flag("--json", json, "print a one-line JSON summary as the last stdout line");
  sub->add_option("--threads", threads, "OpenMP/oneDNN threads (default: all cores)");
}

void CommonFlags::apply() const { set_num_threads(threads); }

void print_json(const nlohmann::json& j) {
  std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
}

void note(const std::string& line) { std::cerr << line << std::endl; }

}  // namespace fw::cli
