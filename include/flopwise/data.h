// flopwise public API: text and token files. Tokenizers, llm.c token files,
// batching, safetensors.
#pragma once
#include "data/loader.h"
#include "data/safetensors.h"
#include "data/token_file.h"
#include "data/tokenizer.h"
