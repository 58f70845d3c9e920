// Softmax cross-entropy and its gradient, for any vocabulary V, in three passes (launched one after the other
// by gpu/ops.py's softmax_xent). NumPy twin: output.softmax_cross_entropy and its backward; Numba twin:
// softmax_xent in engines/numba_kernels.py (one pass per row: on the CPU a row is one thread's work anyway).
// No pass makes one thread walk a whole row of a large vocabulary, and no pass needs threads to meet.
#include "common.cuh"

// Pass 1, one thread per (row r, chunk c of `chunk` columns): the chunk's max and its sum of exp(z - max).
extern "C" __global__ void softmax_xent_partial(const real* logits, real* part_max, real* part_sum,
                                                int rows, int V, int chunk, int chunks) {
    long long idx = thread_index();
    if (idx >= (long long)rows * chunks) return;
    long long r = idx / chunks;
    int v0 = (idx % chunks) * chunk, v1 = min(V, v0 + chunk);
    const real* z = logits + r * V;
    real m = z[v0];
    for (int v = v0 + 1; v < v1; ++v) m = z[v] > m ? z[v] : m;
    real s = real(0);
    for (int v = v0; v < v1; ++v) s += exp(z[v] - m);
    part_max[idx] = m;
    part_sum[idx] = s;
}

// Pass 2, one thread per row: the chunks merged, M = max of their maxima, S = sum_c part_sum[c] exp(max_c - M);
// lse[r] = M + log S = log sum_v exp(z[v]);  row_loss[r] = lse[r] - z[y_r]
extern "C" __global__ void softmax_xent_rows(const real* logits, const long long* y, const real* part_max,
                                             const real* part_sum, real* lse, real* row_loss, int rows, int V,
                                             int chunks) {
    long long r = thread_index();
    if (r >= rows) return;
    const real* pm = part_max + r * chunks;
    const real* ps = part_sum + r * chunks;
    real M = pm[0];
    for (int c = 1; c < chunks; ++c) M = pm[c] > M ? pm[c] : M;
    real S = real(0);
    for (int c = 0; c < chunks; ++c) S += ps[c] * exp(pm[c] - M);
    lse[r] = M + log(S);
    row_loss[r] = lse[r] - logits[r * V + y[r]];
}

// Pass 3, one thread per (r, v): logits[r, v] <- (exp(z - lse[r]) - [v == y_r]) / rows, the gradient of the mean
// loss (softmax minus one-hot). Each thread reads and writes only its own element.
extern "C" __global__ void softmax_xent_grad(real* logits, const long long* y, const real* lse, int rows, int V) {
    long long idx = thread_index();
    if (idx >= (long long)rows * V) return;
    long long r = idx / V;
    int v = idx % V;
    logits[idx] = (exp(logits[idx] - lse[r]) - (v == y[r] ? real(1) : real(0))) / real(rows);
}
