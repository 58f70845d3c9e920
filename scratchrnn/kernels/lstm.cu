// LSTM, one time step of one layer, gate blocks in PyTorch's order [i, f, g, o] (g is our C_tilde).
// Mirrors cells/lstm.py step_forward and step_backward line by line: the same names, the same arguments
// in the same order (then the sizes B, nh), one thread per (b, j). Numba twin: engines/numba_kernels.py.
#include "common.cuh"

// cells.lstm.step_forward: A = Ax + Ah + b_hh; I = s(Ai), F = s(Af), C_tilde = tanh(Ac), O = s(Ao)
// C = F * C_prev + I * C_tilde;  H = O * tanh(C).   Ax, Ah, gates (B, 4nh); b_hh (4nh); C_prev, C, H (B, nh)
extern "C" __global__ void lstm_forward(const real* Ax, const real* Ah, const real* b_hh, const real* C_prev,
                                        real* gates, real* C, real* H, int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    int b = idx / nh, j = idx % nh;
    long long row = (long long)b * 4 * nh;
    real i = sigmoid(Ax[row + j] + Ah[row + j] + b_hh[j]);
    real f = sigmoid(Ax[row + nh + j] + Ah[row + nh + j] + b_hh[nh + j]);
    real c_tilde = tanh(Ax[row + 2 * nh + j] + Ah[row + 2 * nh + j] + b_hh[2 * nh + j]);
    real o = sigmoid(Ax[row + 3 * nh + j] + Ah[row + 3 * nh + j] + b_hh[3 * nh + j]);
    gates[row + j] = i; gates[row + nh + j] = f; gates[row + 2 * nh + j] = c_tilde; gates[row + 3 * nh + j] = o;
    real c = f * C_prev[idx] + i * c_tilde;
    C[idx] = c;
    H[idx] = o * tanh(c);
}

// cells.lstm.step_backward: dH = dH_above + dH_rec;  dC += dH * O * (1 - tanh(C)^2)   (tanh(C) recomputed)
// dA = [dC*C_tilde*I(1-I), dC*C_prev*F(1-F), dC*I*(1-C_tilde^2), dH*tanh(C)*O(1-O)];  dC *= F
// dC holds dC_next on entry and dC_prev on exit (each thread reads and writes only its own element).
extern "C" __global__ void lstm_backward(const real* dH_above, const real* dH_rec, real* dC, const real* gates,
                                         const real* C_prev, const real* C, real* dA, int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    int b = idx / nh, j = idx % nh;
    long long row = (long long)b * 4 * nh;
    real i = gates[row + j], f = gates[row + nh + j], c_tilde = gates[row + 2 * nh + j], o = gates[row + 3 * nh + j];
    real tanh_c = tanh(C[idx]);
    real dh = dH_above[idx] + dH_rec[idx];
    real dc = dC[idx] + dh * o * (real(1) - tanh_c * tanh_c);
    dA[row + j] = dc * c_tilde * i * (real(1) - i);
    dA[row + nh + j] = dc * C_prev[idx] * f * (real(1) - f);
    dA[row + 2 * nh + j] = dc * i * (real(1) - c_tilde * c_tilde);
    dA[row + 3 * nh + j] = dh * tanh_c * o * (real(1) - o);
    dC[idx] = dc * f;
}
