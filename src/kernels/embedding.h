// Token embedding lookup and its gradient.
#pragma once
#include <cstdint>

namespace fw {

// x (M,C) = wte[tokens] with wte (V,C).
void embedding_forward(float* x, const int32_t* tokens, const float* wte, int64_t M, int64_t C);

// dwte[tokens[i]] += dx[i]. Runs in token order so repeated tokens sum deterministically.
void embedding_backward(float* dwte, const float* dx, const int32_t* tokens, int64_t M, int64_t C);

}  // namespace fw
