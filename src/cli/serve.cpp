// flopwise serve: an OpenAI-compatible completions server with continuous batching
// (serve/server.h).
#include <filesystem>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "serve/server.h"
#include "train/checkpoint.h"

namespace fw::cli {

namespace {
struct ServeFlags {
  std::string ckpt;
  ServeOptions o;
  PrecisionFlag precision;
  KvCacheFlag kv;
  RoutingFlag routing;
  CommonFlags common;
};

void run_serve(ServeFlags& f) {
  f.common.apply();
  LoadedModel lm = load_model(f.ckpt);
  f.precision.apply(*lm.model, lm.config);
  f.o.kv = f.kv.value();
  f.routing.apply(*lm.model, f.ckpt);
  if (f.o.model_name.empty()) {
    const std::filesystem::path p = std::filesystem::absolute(f.ckpt).lexically_normal();
    f.o.model_name = (p.has_filename() ? p.filename() : p.parent_path().filename()).string();
  }
  // the listening line on stdout (scripts read the port from it), the rest on stderr
  serve(lm, f.o, [](const std::string& line) {
    if (line.rfind("listening on ", 0) == 0) std::cout << line << std::endl;
    else note(line);
  });
}
}  // namespace

void register_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  auto* sub = app.add_subcommand("serve", "OpenAI-compatible completions server with continuous batching");
  sub->add_option("--ckpt", f->ckpt, "run folder or model.safetensors")->required();
  sub->add_option("--host", f->o.host, "address to listen on (default 127.0.0.1)");
  sub->add_option("--port", f->o.port, "port (default 8080; 0: any free port, printed)");
  sub->add_option("--slots", f->o.slots, "sequences decoded side by side (default 4)");
  sub->add_option("--queue", f->o.queue, "choices that may wait for a slot; beyond, 503 (default 64)");
  sub->add_option("--ctx", f->o.ctx, "context per slot, prompt + completion (default model.max_seq_len)");
  sub->add_option("--batch-tokens", f->o.batch_tokens,
                  "most tokens one forward runs: every decoding slot's next token, then 64-token prompt chunks "
                  "while they fit (default 256, at least 63 + slots; beyond 64 x slots unused)");
  sub->add_option("--max-body", f->o.max_body, "largest request body in bytes (default 1 MiB; larger: 413)");
  sub->add_option("--model-name", f->o.model_name, "the model id /v1/models lists (default: the run folder's name)");
  f->precision.add(sub);
  f->kv.add(sub);
  f->routing.add(sub);
  f->common.add(sub);
  sub->callback([f]() { run_serve(*f); });
}

}  // namespace fw::cli
