// Global-norm clipping and the optimisers' updates over the flat buffers, without reading anything back to
// the host: sum_squares first, then one kernel per optimiser that clips and updates, one thread per element.
// Each mirrors the `update` of its module in scratchrnn/optimizers/ (Numba twins: engines/numba_kernels.py),
// with the clipping factor computed from sumsq and theta: scale = theta / norm when norm > theta, else 1.
#include "common.cuh"

// sumsq[0] += sum_i g_i^2 (float64 accumulator). Grid-stride: each thread sums its share, then one
// atomicAdd per thread (sumsq must be zeroed before the launch).
extern "C" __global__ void sum_squares(const real* g, long long size, double* sumsq) {
    double s = 0.0;
    for (long long i = thread_index(); i < size; i += (long long)gridDim.x * blockDim.x)
        s += (double)g[i] * (double)g[i];
    atomicAdd(sumsq, s);
}

// engines/clipping.py's rule (theta = +inf: no clipping)
__device__ __forceinline__ double clipping_scale(const double* sumsq, real theta) {
    double norm = sqrt(sumsq[0]);
    return norm > (double)theta ? (double)theta / norm : 1.0;
}

// optimizers/sgd.py: p -= lr * (scale * g + wd * p)
extern "C" __global__ void sgd_update(real* p, const real* g, long long size, const double* sumsq, real theta,
                                      int t, real lr, real weight_decay) {
    long long i = thread_index();
    if (i >= size) return;
    double scale = clipping_scale(sumsq, theta);
    p[i] -= (real)((double)lr * scale) * g[i] + (real)((double)lr * weight_decay) * p[i];
}

// optimizers/momentum.py: d = scale * g + wd * p;  u = mu * u + d;  p -= lr * (Nesterov ? d + mu * u : u)
extern "C" __global__ void momentum_update(real* p, const real* g, long long size, const double* sumsq, real theta,
                                           real* u, int t, real lr, real momentum, int nesterov, real weight_decay) {
    long long i = thread_index();
    if (i >= size) return;
    double scale = clipping_scale(sumsq, theta);
    double d = scale * g[i] + (double)weight_decay * p[i];
    u[i] = (real)((double)momentum * u[i] + d);
    p[i] -= (real)((double)lr * (nesterov ? d + (double)momentum * u[i] : (double)u[i]));
}

// optimizers/adam.py: Adam (L2 decay in d) or AdamW (decoupled: p *= 1 - lr * wd);  m, v;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
extern "C" __global__ void adam_update(real* p, const real* g, long long size, const double* sumsq, real theta,
                                       real* m, real* v, int t, real lr, real beta1, real beta2, real eps,
                                       real weight_decay, int decoupled) {
    long long i = thread_index();
    if (i >= size) return;
    double scale = clipping_scale(sumsq, theta);
    double step = (double)lr / (1.0 - pow((double)beta1, t)), root = sqrt(1.0 - pow((double)beta2, t));
    double d = scale * g[i] + (decoupled ? 0.0 : (double)weight_decay * p[i]);
    if (decoupled) p[i] *= (real)(1.0 - (double)lr * weight_decay);
    m[i] = (real)((double)beta1 * m[i] + (1.0 - beta1) * d);
    v[i] = (real)((double)beta2 * v[i] + (1.0 - beta2) * d * d);
    p[i] -= (real)(step * m[i] / (sqrt((double)v[i]) / root + eps));
}

// optimizers/rmsprop.py: d = scale * g + wd * p;  s = alpha * s + (1 - alpha) d^2;  step = d / (sqrt(s) + eps)
// through b = mu * b + step when momentum > 0;  p -= lr * step
extern "C" __global__ void rmsprop_update(real* p, const real* g, long long size, const double* sumsq, real theta,
                                          real* s, real* b, int t, real lr, real alpha, real eps, real momentum,
                                          real weight_decay) {
    long long i = thread_index();
    if (i >= size) return;
    double scale = clipping_scale(sumsq, theta);
    double d = scale * g[i] + (double)weight_decay * p[i];
    s[i] = (real)((double)alpha * s[i] + (1.0 - alpha) * d * d);
    double step = d / (sqrt((double)s[i]) + eps);
    if (momentum > real(0)) { b[i] = (real)((double)momentum * b[i] + step); step = b[i]; }
    p[i] -= (real)((double)lr * step);
}
