// One-hot input without the one-hot matrix. NumPy twin: project_input in scratchrnn/cells/common.py.
#include "common.cuh"

// out[r, j] = W[ids[r], j] + bias[j]        out (N, m), W (V, m)
extern "C" __global__ void gather_rows_bias(const real* W, const long long* ids, const real* bias, real* out,
                                            int N, int m) {
    long long idx = thread_index();
    if (idx >= (long long)N * m) return;
    long long r = idx / m;
    int j = idx % m;
    out[idx] = W[ids[r] * m + j] + bias[j];
}

// dW[v, j] += sum over rows r with ids[r] == v of dA[r, j]. One thread per (v, j) that scans the ids:
// no atomics, so the sum is always taken in the same order (deterministic).
extern "C" __global__ void scatter_add_rows(real* dW, const long long* ids, const real* dA, int N, int V, int m) {
    long long idx = thread_index();
    if (idx >= (long long)V * m) return;
    long long v = idx / m;
    int j = idx % m;
    real s = real(0);
    for (int r = 0; r < N; ++r)
        if (ids[r] == v) s += dA[(long long)r * m + j];
    dW[idx] += s;
}
