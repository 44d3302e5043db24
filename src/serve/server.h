// `flopwise serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the continuous
// batching scheduler. Endpoints: POST /v1/completions (streamed with server-sent events
// when asked), GET /v1/models, GET /health, GET /metrics (Prometheus text). Errors come
// in OpenAI's shape with their HTTP status; a full queue answers 503 with Retry-After;
// a client that disconnects from a stream frees its slot; SIGTERM (or SIGINT) stops
// accepting, lets what runs finish, and returns.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "infer/generator.h"  // KvCache
#include "train/checkpoint.h"

namespace fw {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (the log line names it)
  int64_t slots = 4;        // sequences decoded side by side
  int64_t queue = 64;       // requests' choices that may wait for a slot
  int64_t ctx = 0;          // context per slot (0: model.max_seq_len)
  int64_t batch_tokens = 0; // most tokens one forward runs (0: Scheduler's default; Scheduler::forward_budget)
  KvCache kv = KvCache::fp32;  // the slots' KV cache precision (--kv-cache)
  size_t max_body = 1 << 20;  // request bodies larger than this get 413
  std::string model_name;   // the id /v1/models lists (default: the run folder's name)
};

// cpp-httplib 0.11 (Debian's, compiled) listens with a backlog of 5 connections: 16
// clients connecting at once while the cores are busy decoding overflow it, and the
// kernel drops the extra connection requests, which the clients retry only after 1 s
// (seen as 1-second time-to-first-token outliers under load). Linux lets a listening
// socket's backlog be raised by calling listen() again: this raises it to SOMAXCONN on
// this process's listening sockets bound to `port` (found among its descriptors).
void widen_listen_backlog(int port);

// Serves until SIGTERM or SIGINT; `log` gets "listening on http://HOST:PORT" first.
void serve(LoadedModel& lm, const ServeOptions& o, const std::function<void(const std::string&)>& log);

}  // namespace fw
