// Plain RNN step, one layer. NumPy twin: scratchrnn/cells/rnn.py.
#include "common.cuh"

// H = phi(Ax + Ah + b_hh), phi = tanh (relu = 0) or ReLU (relu = 1). All (B, n), b_hh (n).
extern "C" __global__ void rnn_forward(const real* Ax, const real* Ah, const real* b_hh, real* H,
                                       int relu, int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    real a = Ax[idx] + Ah[idx] + b_hh[idx % n];
    H[idx] = relu ? (a > real(0) ? a : real(0)) : tanh(a);
}

// dA = (dH_above + dH_rec) * phi'(A), with phi' = 1 - H^2 (tanh) or [H > 0] (ReLU).
extern "C" __global__ void rnn_backward(const real* dH_above, const real* dH_rec, const real* H, real* dA,
                                        int relu, int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    real dh = dH_above[idx] + dH_rec[idx];
    real h = H[idx];
    dA[idx] = relu ? (h > real(0) ? dh : real(0)) : dh * (real(1) - h * h);
}
