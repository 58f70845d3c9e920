// Plain RNN, one time step of one layer. Mirrors cells/rnn.py step_forward and step_backward: the same
// names, the same arguments in the same order (then the sizes B, nh). Numba twin: engines/numba_kernels.py.
#include "common.cuh"

// cells.rnn.step_forward: H = phi(Ax + Ah + b_hh), phi = tanh (relu = 0) or ReLU (relu = 1). (B, nh), b_hh (nh)
extern "C" __global__ void rnn_forward(const real* Ax, const real* Ah, const real* b_hh, real* H, int relu,
                                       int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    real a = Ax[idx] + Ah[idx] + b_hh[idx % nh];
    H[idx] = relu ? (a > real(0) ? a : real(0)) : tanh(a);
}

// cells.rnn.step_backward: dA = (dH_above + dH_rec) * phi'(A), phi' = [H > 0] (ReLU) or 1 - H^2 (tanh).
extern "C" __global__ void rnn_backward(const real* dH_above, const real* dH_rec, const real* H, real* dA, int relu,
                                        int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    real dh = dH_above[idx] + dH_rec[idx];
    real h = H[idx];
    dA[idx] = relu ? (h > real(0) ? dh : real(0)) : dh * (real(1) - h * h);
}
