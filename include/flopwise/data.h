// flopwise public API: text and token files. Tokenizers, llm.c token files,
// batching, safetensors.
#pragma once
#include "batching/loader.h"
#include "formats/safetensors.h"
#include "formats/token_file.h"
#include "tokenizers/tokenizer.h"
