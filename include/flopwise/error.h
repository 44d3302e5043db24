// flopwise public API: errors. Every failure the library reports is an fw::Error
// whose message is one line naming the file or field and the problem.
#pragma once
#include "core/error.h"
