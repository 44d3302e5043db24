"""Load on `flopwise serve`: C concurrent clients, each sending R streamed completions
back to back (real prompts: passages of Brown's validation text), against a server of
the demo's dense model and one of its Mixture-of-Depths model (same shape, trained on
the same budget), each with continuous batching (--slots 16) and one request at a time
(--slots 1), and the 16-client load on the scheduler in one process without HTTP
(`flopwise bench serve`, slots "16 in-process"). Per configuration: total completion
tokens per second (all clients, wall time), p50/p99 time to first token, p50/p99 time
per token after the first (per request: (end - first token) / (tokens - 1), tokens
from the stream's usage chunk).
    bench/serve_load.sh [--shape bench] [--precision fp32|bf16] [--kv-cache fp32|bf16]
(the demo's models, trained first if runs/demo is missing; --shape bench: the default
config's shape, d=512, 6 layers, bytes, as bench/mod_vs_dense.sh measures MoD's
decoding speed; its models in runs/serve_bench, results in serve_load_bench.json)
Writes bench/results/serve_load.json and prints a table."""
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOPWISE = os.path.join(ROOT, "build/flopwise")
CLIENTS = [1, 4, 16]
REQUESTS_PER_CLIENT = 4
MAX_TOKENS = 64
RUNS = sys.argv[1] if len(sys.argv) > 1 else "runs/demo"          # holds dense/ and mod/
RESULT = sys.argv[2] if len(sys.argv) > 2 else "serve_load"      # bench/results/RESULT.json
PRECISION = sys.argv[3] if len(sys.argv) > 3 else "checkpoint"  # the servers' --precision
KV_CACHE = sys.argv[4] if len(sys.argv) > 4 else "fp32"         # and --kv-cache
ROUNDS = 3


def prompts(n):
    """n passages of consecutive words of Brown's validation text."""
    text = open(os.path.join(ROOT, "data/brown-bytes/val.txt"), encoding="utf-8", errors="replace").read()
    words = text.split()
    out, i = [], 0
    while len(out) < n:
        k = 10 + (len(out) * 7) % 12  # 10-21 words: with 64 new tokens within the demo's 128-token context
        out.append(" ".join(words[i:i + k]))
        i += k
    return out


def start(run, slots):
    p = subprocess.Popen([FLOPWISE, "serve", "--ckpt", run, "--port", "0", "--slots", str(slots), "--queue", "256",
                          "--precision", PRECISION, "--kv-cache", KV_CACHE],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    port = int(line.split("127.0.0.1:")[1].split()[0])
    return p, port


def one(port, prompt, seed):
    """A streamed completion: (time to first token, seconds per later token, tokens)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = json.dumps({"prompt": prompt, "max_tokens": MAX_TOKENS, "temperature": 0.8, "top_p": 0.95, "seed": seed,
                       "stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    first = last = None
    tokens = 0
    for raw in r:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        j = json.loads(line[6:])
        now = time.perf_counter()
        if j.get("usage"):
            tokens = j["usage"]["completion_tokens"]
            continue
        if first is None:
            first = now
        last = now
    c.close()
    per = (last - first) / (tokens - 1) if tokens > 1 and last > first else float("nan")
    return first - t0, per, tokens


def load(port, clients, texts):
    results, lock = [], threading.Lock()

    def client(c):
        for k in range(REQUESTS_PER_CLIENT):
            i = c * REQUESTS_PER_CLIENT + k
            r = one(port, texts[i % len(texts)], 1000 + i)
            with lock:
                results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ttft = sorted(r[0] for r in results)
    per = sorted(r[1] for r in results if r[1] == r[1])
    q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")
    return {"clients": clients, "requests": len(results), "tokens": sum(r[2] for r in results), "seconds": wall,
            "tokens_per_s": sum(r[2] for r in results) / wall, "ttft_p50_ms": 1e3 * statistics.median(ttft),
            "ttft_p99_ms": 1e3 * q(ttft, 0.99), "per_token_p50_ms": 1e3 * statistics.median(per),
            "per_token_p99_ms": 1e3 * q(per, 0.99)}


def in_process(run, texts):
    """The 16-client load of 4 requests each on the serving scheduler in one process,
    without HTTP: the same prompts, sampling and seeds."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as f:
        f.write("\n".join(texts) + "\n")
        f.flush()
        out = subprocess.run([FLOPWISE, "bench", "serve", "--ckpt", run, "--prompts", f.name, "--clients",
                              str(max(CLIENTS)), "--requests", str(REQUESTS_PER_CLIENT), "--max-tokens", str(MAX_TOKENS),
                              "--slots", "16", "--rounds", "1", "--precision", PRECISION, "--kv-cache", KV_CACHE,
                              "--json"], capture_output=True, text=True, check=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    keep = ("clients", "requests", "tokens", "seconds", "tokens_per_s", "ttft_p50_ms", "ttft_p99_ms",
            "per_token_p50_ms", "per_token_p99_ms", "forward_share", "step_iterations", "step_seconds", "step_tokens",
            "chunk_iterations", "chunk_seconds", "chunk_prompt_tokens", "chunk_drawn_tokens")
    return {k: j[k] for k in keep}


def main():
    texts = prompts(max(CLIENTS) * REQUESTS_PER_CLIENT)
    rows = []  # every round's
    for round_ in range(ROUNDS):  # the configurations in turn, ROUNDS times (the machine's speed drifts)
        for model in ("dense", "mod"):
            run = os.path.join(ROOT, RUNS, model)
            for slots in (16, 1):
                server, port = start(run, slots)
                try:
                    one(port, texts[0], 1)  # warm
                    for clients in CLIENTS:
                        r = load(port, clients, texts)
                        r.update(model=model, slots=slots, round=round_)
                        rows.append(r)
                finally:
                    server.terminate()
                    server.wait(timeout=60)
            # the same 16-client load on the scheduler without HTTP (flopwise bench serve)
            r = in_process(run, texts)
            r.update(model=model, slots="16 in-process", round=round_)
            rows.append(r)
    best = {}  # per configuration, its fastest round (the table and the ratios)
    for r in rows:
        key = (r["model"], r["slots"], r["clients"])
        if key not in best or r["tokens_per_s"] > best[key]["tokens_per_s"]:
            best[key] = r
    for (model, slots, clients), r in best.items():
        print(f"| {model} | {slots} | {clients} | {r['tokens_per_s']:.0f} | {r['ttft_p50_ms']:.1f} / "
              f"{r['ttft_p99_ms']:.1f} | {r['per_token_p50_ms']:.2f} / {r['per_token_p99_ms']:.2f} |", flush=True)
    by = best
    ratios = {
        "batching_over_one_at_a_time_16_clients": {
            m: by[(m, 16, 16)]["tokens_per_s"] / by[(m, 1, 16)]["tokens_per_s"] for m in ("dense", "mod")},
        "mod_over_dense_16_clients": by[("mod", 16, 16)]["tokens_per_s"] / by[("dense", 16, 16)]["tokens_per_s"],
        "p99_per_token_16_over_1_client": {
            m: by[(m, 16, 16)]["per_token_p99_ms"] / by[(m, 16, 1)]["per_token_p99_ms"] for m in ("dense", "mod")},
        "mod_over_dense_16_clients_in_process":
            by[("mod", "16 in-process", 16)]["tokens_per_s"] / by[("dense", "16 in-process", 16)]["tokens_per_s"],
        "http_over_in_process_16_clients": {
            m: by[(m, 16, 16)]["tokens_per_s"] / by[(m, "16 in-process", 16)]["tokens_per_s"] for m in ("dense", "mod")},
    }
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor())
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = {"cpu": cpu, "commit": commit, "cores": os.cpu_count(), "models": f"{RUNS}/dense and {RUNS}/mod", "precision": PRECISION,
           "kv_cache": KV_CACHE,
           "requests_per_client": REQUESTS_PER_CLIENT, "rounds": ROUNDS, "table": "fastest round per configuration", "max_tokens": MAX_TOKENS, "rows": rows, "ratios": ratios}
    path = os.path.join(ROOT, f"bench/results/{RESULT}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(ratios, indent=1))
    print(f"{cpu}, commit {commit}: {path}", file=sys.stderr)


if __name__ == "__main__":
    print("| model | slots | clients | tokens/s | TTFT p50 / p99 ms | per token p50 / p99 ms |\n"
          "|---|---:|---:|---:|---:|---:|")
    main()
