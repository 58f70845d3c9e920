// One-hot input without the one-hot matrix. NumPy twins: project_input in cells/common.py (the gather) and
// backend.scatter_add_rows (its backward); Numba twins of the same names in engines/numba_kernels.py.
#include "common.cuh"

// out[r, j] = W[ids[r], j] + bias[j]        out (rows, m), W (V, m): one thread per (r, j)
extern "C" __global__ void gather_rows_bias(const real* W, const long long* ids, const real* bias, real* out,
                                            int rows, int m) {
    long long idx = thread_index();
    if (idx >= (long long)rows * m) return;
    long long r = idx / m;
    int j = idx % m;
    out[idx] = W[ids[r] * m + j] + bias[j];
}

// dW[v, j] += sum over the rows r with ids[r] == v of dA[r, j]. The launcher (gpu/ops.py) hands the row
// numbers sorted by id, ascending within an id (`order`, rows entries), and where each id's rows begin
// (`starts`, V + 1 entries): one thread per (v, j) adds its own rows only, always in the same order (no
// atomics: the sum is deterministic), and the work is rows*m + V*m whatever the vocabulary.
extern "C" __global__ void scatter_add_rows(real* dW, const long long* order, const long long* starts,
                                            const real* dA, int V, int m) {
    long long idx = thread_index();
    if (idx >= (long long)V * m) return;
    long long v = idx / m;
    int j = idx % m;
    real s = real(0);
    for (long long k = starts[v]; k < starts[v + 1]; ++k)
        s += dA[order[k] * m + j];
    dW[idx] += s;
}
