#include "serve/server.h"

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "serve/openai_api.h"
#include "serve/scheduler.h"
#include "tokenizers/utf8.h"

namespace fw {

namespace {

std::atomic<bool> g_terminate{false};
extern "C" void on_terminate(int) { g_terminate = true; }

// Requests by outcome, for /metrics.
struct Counters {
  std::mutex mutex;
  std::map<std::string, int64_t> outcome;  // ok, invalid, rejected, cancelled, error
  void add(const std::string& o) {
    std::lock_guard<std::mutex> lk(mutex);
    outcome[o]++;
  }
};

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump_json(e.body()), "application/json");
}

// The choices of a request: one job per prompt × n, each with its own seed
// (seed + its index: the i-th choice draws what `flopwise sample` would draw for the
// i-th of several prompts).
std::vector<std::shared_ptr<Job>> jobs_for(const CompletionRequest& r, int64_t vocab_limit) {
  std::vector<std::shared_ptr<Job>> jobs;
  const uint64_t seed = r.has_seed ? r.seed : uint64_t(std::random_device{}()) << 32 | std::random_device{}();
  for (const auto& p : r.prompts)
    for (int64_t c = 0; c < r.n; c++) {
      auto j = std::make_shared<Job>();
      j->prompt = p;
      j->max_tokens = r.max_tokens;
      j->sampling = {r.temperature, r.top_k, r.top_p, vocab_limit};
      j->seed = seed + uint64_t(jobs.size());
      j->stop = r.stop;
      j->logprobs = r.logprobs;
      jobs.push_back(j);
    }
  return jobs;
}

// Token counts; the n choices of one prompt share it, which counts once (as OpenAI does).
nlohmann::json usage(const std::vector<std::shared_ptr<Job>>& jobs, int64_t n) {
  int64_t prompt = 0, completion = 0;
  for (size_t i = 0; i < jobs.size(); i++) {
    std::lock_guard<std::mutex> lk(jobs[i]->mutex);
    if (i % size_t(n) == 0) prompt += int64_t(jobs[i]->prompt.size());
    completion += int64_t(jobs[i]->tokens.size());
  }
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

// The fields every completion body and stream chunk carries, around its choices (and
// the usage, when given).
nlohmann::json completion_object(const std::string& id, int64_t created, const std::string& model,
                                 nlohmann::json choices, nlohmann::json token_counts = nullptr) {
  nlohmann::json j = {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
                      {"choices", std::move(choices)}};
  if (!token_counts.is_null()) j["usage"] = std::move(token_counts);
  return j;
}

nlohmann::json choice_json(const std::string& text, size_t index, nlohmann::json finish_reason,
                           nlohmann::json logprobs = nullptr) {
  return {{"text", text}, {"index", index}, {"logprobs", std::move(logprobs)}, {"finish_reason", std::move(finish_reason)}};
}

// A token's bytes as a JSON string: the text when it is whole UTF-8, else OpenAI's
// "bytes:\xNN..." spelling (a token may hold part of a character).
std::string token_string(const std::string& bytes) {
  if (utf8_valid(bytes)) return bytes;
  std::string out = "bytes:";
  char hex[5];
  for (const unsigned char c : bytes) std::snprintf(hex, sizeof hex, "\\x%02x", c), out += hex;
  return out;
}

// The logprobs object of a choice's tokens *next.. whose text begins before text_end
// (the text shown so far: a stream sends each token's entry with the chunk that shows
// its first byte); *next moves past them. Offsets are bytes into the completion's text.
nlohmann::json logprobs_json(const Job& j, size_t text_end, size_t* next) {
  if (j.logprobs < 0) return nullptr;
  nlohmann::json tokens = nlohmann::json::array(), logprobs = nlohmann::json::array(),
                 top = nlohmann::json::array(), offsets = nlohmann::json::array();
  for (; *next < j.token_logprobs.size() && j.token_logprobs[*next].offset < text_end; ++*next) {
    const Job::Logprob& e = j.token_logprobs[*next];
    tokens.push_back(token_string(e.text));
    logprobs.push_back(e.logprob);
    nlohmann::json alternatives = nlohmann::json::object();
    for (const auto& [text, logprob] : e.top) alternatives[token_string(text)] = logprob;
    top.push_back(std::move(alternatives));
    offsets.push_back(e.offset);
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", top}, {"text_offset", offsets}};
}

// A client that went away: its choices stop at the next token boundary. Returns false
// (the content provider's "abort").
bool cancel(const std::vector<std::shared_ptr<Job>>& jobs, Counters& counters) {
  for (const auto& j : jobs) j->cancelled = true;
  counters.add("cancelled");
  return false;
}

std::string completion_id() {
  static std::atomic<uint64_t> next{1};
  return "cmpl-flopwise-" + std::to_string(std::time(nullptr)) + "-" + std::to_string(next++);
}

}  // namespace

void widen_listen_backlog(int port) {
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    int fd = -1;
    try {
      fd = std::stoi(e.path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int listening = 0;
    socklen_t ilen = sizeof listening;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ilen) != 0 || !listening)
      continue;
    const int p = addr.ss_family == AF_INET    ? ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port)
                  : addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                               : -1;
    if (p == port) ::listen(fd, SOMAXCONN);
  }
}

void serve(LoadedModel& lm, const ServeOptions& o, const std::function<void(const std::string&)>& log) {
  const ModelConfig& mc = lm.config.model;
  FW_CHECK(!mc.encoder(), "serve: ", lm.config.model.kind == ModelKind::encoder ? "an encoder" : "this model",
           " does not generate text (serve decoders)");
  const int64_t ctx = o.ctx > 0 ? o.ctx : mc.max_seq_len;
  FW_CHECK(o.queue >= 1, "serve: --queue must be >= 1, not ", o.queue);
  FW_CHECK(ctx >= 2, "serve: --ctx must be >= 2, not ", ctx);
  const std::string name = o.model_name;
  // the tokenizer that prompts are encoded with (one at a time) and the scheduler's own
  std::unique_ptr<Tokenizer> request_tok = make_tokenizer(lm.tokenizer), decode_tok = make_tokenizer(lm.tokenizer);
  std::mutex tok_mutex;
  const int64_t vocab_limit = decode_tok->vocab_size();
  Scheduler sched(*lm.model, *decode_tok, o.slots, o.queue, ctx, o.batch_tokens, o.kv);
  Counters counters;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};  // completion handlers running (streams included)
  const auto started = std::time(nullptr);

  httplib::Server svr;
  // a thread per connection being answered: every slot's and queued choice's stream
  // holds one, and /metrics and /health must still get through (httplib's default
  // pool of 8 would make the 9th concurrent request wait before it is even parsed)
  const size_t threads = size_t(std::min<int64_t>(o.slots + o.queue + 8, 1024));
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(o.max_body);
  svr.set_error_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (req.path == "/v1/completions" && res.status == 413) counters.add("invalid");
    ApiError e{res.status, "", "invalid_request_error", "", ""};
    if (res.status == 404) e.message = "no such endpoint: " + req.method + " " + req.path, e.code = "not_found";
    else if (res.status == 413) e.message = "the request body is too large", e.code = "payload_too_large";
    else e.message = "HTTP status " + std::to_string(res.status);
    send_error(res, e);
  });
  svr.set_exception_handler([&](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    counters.add("error");
    send_error(res, {500, "internal error: " + what, "server_error", "", ""});
  });
  auto not_allowed = [](const httplib::Request& req, httplib::Response& res) {
    send_error(res, {405, "method " + req.method + " is not allowed on " + req.path, "invalid_request_error", "",
                     "method_not_allowed"});
  };
  for (const char* path : {"/v1/completions", "/v1/models", "/health", "/metrics"}) {
    if (std::string(path) != "/v1/completions") svr.Post(path, not_allowed);
    else svr.Get(path, not_allowed);
    svr.Put(path, not_allowed);
    svr.Delete(path, not_allowed);
    svr.Patch(path, not_allowed);
  }

  svr.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    res.status = draining ? 503 : 200;
    res.set_content(draining ? R"({"status":"shutting down"})" : R"({"status":"ok"})", "application/json");
  });
  svr.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json m = {{"id", name}, {"object", "model"}, {"created", int64_t(started)}, {"owned_by", "flopwise"}};
    res.set_content(dump_json({{"object", "list"}, {"data", {m}}}), "application/json");
  });
  svr.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    const SchedulerStats s = sched.stats();
    std::ostringstream out;
    out << "# HELP flopwise_requests_total Completion requests by outcome.\n# TYPE flopwise_requests_total counter\n";
    {
      std::lock_guard<std::mutex> lk(counters.mutex);
      for (const char* k : {"ok", "invalid", "rejected", "cancelled", "error"})
        out << "flopwise_requests_total{outcome=\"" << k << "\"} " << counters.outcome[k] << "\n";
    }
    out << "# HELP flopwise_prompt_tokens_total Prompt tokens of accepted requests.\n"
           "# TYPE flopwise_prompt_tokens_total counter\nflopwise_prompt_tokens_total " << s.prompt_tokens << "\n"
        << "# HELP flopwise_completion_tokens_total Tokens sampled.\n"
           "# TYPE flopwise_completion_tokens_total counter\nflopwise_completion_tokens_total " << s.completion_tokens << "\n"
        << "# HELP flopwise_queue_length Choices waiting for a slot.\n# TYPE flopwise_queue_length gauge\n"
           "flopwise_queue_length " << s.queued << "\n"
        << "# HELP flopwise_busy_slots Slots decoding or prefilling.\n# TYPE flopwise_busy_slots gauge\n"
           "flopwise_busy_slots " << s.busy_slots << "\nflopwise_slots " << s.slots << "\n"
        << "# HELP flopwise_seconds_per_token Forward time (prompt chunks and decoding together) per token "
           "sampled, since start.\n# TYPE flopwise_seconds_per_token gauge\nflopwise_seconds_per_token "
        << (s.drawn_tokens ? s.forward_seconds / double(s.drawn_tokens) : 0.0) << "\n";
    if (!s.routed_layers.empty()) {
      out << "# HELP flopwise_mod_processed_share Share of tokens each Mixture-of-Depths block processed.\n"
             "# TYPE flopwise_mod_processed_share gauge\n";
      for (size_t i = 0; i < s.routed_layers.size(); i++)
        out << "flopwise_mod_processed_share{layer=\"" << s.routed_layers[i] << "\"} "
            << (s.routed_seen ? double(s.routed_processed[i]) / double(s.routed_seen) : 0.0) << "\n";
    }
    res.set_content(out.str(), "text/plain; version=0.0.4");
  });

  svr.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) {
    struct InFlight {  // counts this handler (and its stream) until it ends
      std::atomic<int64_t>& n;
      explicit InFlight(std::atomic<int64_t>& c) : n(c) { n++; }
      ~InFlight() { n--; }
    };
    auto guard = std::make_shared<InFlight>(in_flight);
    if (draining) {
      counters.add("rejected");
      res.set_header("Retry-After", "5");
      return send_error(res, {503, "the server is shutting down", "server_error", "", "shutting_down"});
    }
    CompletionRequest r;
    try {
      std::lock_guard<std::mutex> lk(tok_mutex);
      r = parse_completion_request(req.body, *request_tok, ctx, name);
    } catch (const ApiError& e) {
      counters.add("invalid");
      return send_error(res, e);
    }
    std::vector<std::shared_ptr<Job>> jobs = jobs_for(r, vocab_limit);
    if (!sched.submit_all(jobs)) {
      counters.add("rejected");
      res.set_header("Retry-After", "1");
      return send_error(res, {503, "the server is busy: the queue is full; retry later", "server_error", "",
                              "queue_full"});
    }
    const std::string id = completion_id();
    const int64_t created = std::time(nullptr);
    if (!r.stream) {  // one JSON body when every choice is done; a client gone before frees the slots
      res.set_chunked_content_provider(
          "application/json", [&, jobs, id, created, model = r.model, n = r.n, guard](size_t, httplib::DataSink& sink) {
            for (const auto& jp : jobs) {
              Job& j = *jp;
              std::unique_lock<std::mutex> lk(j.mutex);
              if (!j.done) {
                j.cv.wait_for(lk, std::chrono::milliseconds(20), [&] { return j.done; });
                if (!j.done) {
                  lk.unlock();
                  return sink.is_writable() || cancel(jobs, counters);  // true: called again
                }
              }
            }
            nlohmann::json choices = nlohmann::json::array();
            std::string failure;  // "cancelled" (the server stopped) or "error: ..." (the scheduler failed)
            for (size_t i = 0; i < jobs.size(); i++) {
              Job& j = *jobs[i];
              std::lock_guard<std::mutex> lk(j.mutex);
              if (j.finish_reason == "cancelled" || j.finish_reason.rfind("error", 0) == 0) failure = j.finish_reason;
              size_t first = 0;
              choices.push_back(choice_json(j.text, i, j.finish_reason, logprobs_json(j, j.text.size(), &first)));
            }
            counters.add(failure.empty() ? "ok" : failure == "cancelled" ? "cancelled" : "error");
            const std::string body =
                !failure.empty()
                    ? dump_json(ApiError{failure == "cancelled" ? 503 : 500,
                                         failure == "cancelled" ? "the server stopped before the completion finished"
                                                                : failure,
                                         "server_error", "", ""}.body())
                    : dump_json(completion_object(id, created, model, choices, usage(jobs, n)));
            if (!sink.write(body.data(), body.size())) return false;
            sink.done();
            return true;
          });
      return;
    }
    // streamed: one event per choice whenever its visible text grows, then [DONE]
    auto sent = std::make_shared<std::vector<size_t>>(jobs.size(), 0);
    auto sent_logprobs = std::make_shared<std::vector<size_t>>(jobs.size(), 0);  // entries sent, per choice
    auto finished = std::make_shared<std::vector<bool>>(jobs.size(), false);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [&, jobs, sent, sent_logprobs, finished, id, created, model = r.model, n = r.n, include_usage = r.include_usage,
         guard](size_t, httplib::DataSink& sink) {
          bool all = true;
          std::string events;
          for (size_t i = 0; i < jobs.size(); i++) {
            if ((*finished)[i]) continue;
            Job& j = *jobs[i];
            std::unique_lock<std::mutex> lk(j.mutex);
            if (events.empty()) j.cv.wait_for(lk, std::chrono::milliseconds(20), [&] {
              return j.done || j.text.size() > (*sent)[i];
            });
            const bool ends = j.done;
            if (j.text.size() > (*sent)[i] || ends) {
              const auto choice = choice_json(j.text.substr((*sent)[i]), i,
                                              ends ? nlohmann::json(j.finish_reason) : nlohmann::json(nullptr),
                                              logprobs_json(j, j.text.size(), &(*sent_logprobs)[i]));
              events += "data: " + dump_json(completion_object(id, created, model, {choice})) + "\n\n";
              (*sent)[i] = j.text.size();
              (*finished)[i] = ends;
            }
            all &= ends;
          }
          if (!sink.is_writable() || (!events.empty() && !sink.write(events.data(), events.size())))
            return cancel(jobs, counters);
          if (!all) return true;
          std::string done = "data: [DONE]\n\n";
          if (include_usage)  // OpenAI's last chunk: no choices, the request's usage
            done = "data: " +
                   dump_json(completion_object(id, created, model, nlohmann::json::array(), usage(jobs, n))) +
                   "\n\n" + done;
          if (!sink.write(done.data(), done.size())) return cancel(jobs, counters);
          counters.add("ok");
          sink.done();
          return true;
        });
  });

  const int port = o.port == 0 ? svr.bind_to_any_port(o.host) : (svr.bind_to_port(o.host, o.port) ? o.port : -1);
  FW_CHECK(port > 0, "serve: cannot listen on ", o.host, ":", o.port, " (in use, or not an address of this machine)");
  widen_listen_backlog(port);
  g_terminate = false;
  std::signal(SIGTERM, on_terminate);
  std::signal(SIGINT, on_terminate);
  // SIGTERM: stop accepting work, let running requests finish, then stop the server
  std::thread watcher([&] {
    while (!g_terminate) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    draining = true;
    log("serve: stopping: finishing the requests that run");
    while (!sched.idle() || in_flight > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    svr.stop();
  });
  log(str("listening on http://", o.host, ":", port, " (model '", name, "', ", o.slots, " slots, queue ", o.queue,
          ", context ", ctx, ", ", sched.batch_tokens(), " tokens per forward, ",
          lm.model->bf16_enabled() ? "bf16" : "fp32", " matrix products, ", kv_cache_name(o.kv),
          " KV cache)"));
  std::thread http([&] {
    svr.listen_after_bind();
    g_terminate = true;  // the server stopped for another reason: end the watcher
    sched.stop();
  });
  sched.run();  // the model's compute on this thread, which loaded it (serve/scheduler.h says why)
  http.join();
  watcher.join();
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
  log("serve: stopped");
}

}  // namespace fw
