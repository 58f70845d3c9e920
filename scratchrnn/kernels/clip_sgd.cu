// Global-norm clipping and SGD over the flat gradient buffer, without reading anything back to the host.
// NumPy twin: the reference engine's clip_and_sgd (engines/reference.py); Numba twin: clip_sgd.
#include "common.cuh"

// sumsq[0] += sum_i g_i^2 (float64 accumulator). Grid-stride: each thread sums its share, then one
// atomicAdd per thread (sumsq must be zeroed before the launch).
extern "C" __global__ void sum_squares(const real* g, long long size, double* sumsq) {
    double s = 0.0;
    for (long long i = thread_index(); i < size; i += (long long)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    atomicAdd(sumsq, s);
}

// norm = sqrt(sumsq);  p -= lr * scale * g,  scale = theta / norm when norm > theta, else 1
// (the rule of engines.clipping_threshold; theta = +inf: no clipping)
extern "C" __global__ void clip_sgd(real* p, const real* g, long long size, const double* sumsq,
                                    real lr, real theta) {
    long long i = thread_index();
    if (i >= size) return;
    double norm = sqrt(sumsq[0]);
    double scale = norm > (double)theta ? (double)theta / norm : 1.0;
    p[i] -= (real)((double)lr * scale) * g[i];
}
