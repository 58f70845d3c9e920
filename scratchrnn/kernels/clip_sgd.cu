// Global-norm clipping and SGD over the flat gradient buffer, without reading anything back to the host.
// NumPy twin: RNNLM.clip_and_sgd in scratchrnn/model.py.
#include "common.cuh"

// sumsq[0] += sum_i g_i^2 (float64 accumulator). Grid-stride: each thread sums its share, then one
// atomicAdd per thread (sumsq must be zeroed before the launch).
extern "C" __global__ void sum_squares(const real* g, long long size, double* sumsq) {
    double s = 0.0;
    for (long long i = thread_index(); i < size; i += (long long)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    atomicAdd(sumsq, s);
}

// norm = sqrt(sumsq);  p -= lr * min(1, theta / norm) * g   (theta <= 0: no clipping)
extern "C" __global__ void clip_sgd(real* p, const real* g, long long size, const double* sumsq,
                                    real lr, real theta) {
    long long i = thread_index();
    if (i >= size) return;
    double norm = sqrt(sumsq[0]);
    double scale = theta > real(0) ? fmin(1.0, (double)theta / (norm + 1e-12)) : 1.0;
    p[i] -= (real)((double)lr * scale) * g[i];
}
