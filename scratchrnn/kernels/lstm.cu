// LSTM gates, one time step of one layer. NumPy twin: scratchrnn/cells/lstm.py;
// Numba twin: scratchrnn/fast/numba_kernels.py. Gate blocks in PyTorch's order [i, f, g, o].
#include "common.cuh"

// A = Ax + Ah + b_hh;  I = s(Ai), F = s(Af), G = tanh(Ag), O = s(Ao)
// C = F * C_prev + I * G;  H = O * tanh(C)
// Ax, Ah, gates: (B, 4n); b_hh: (4n); C_prev, C, H: (B, n). gates <- [I, F, G, O].
extern "C" __global__ void lstm_forward(const real* Ax, const real* Ah, const real* b_hh,
                                        const real* C_prev, real* gates, real* C, real* H, int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    int b = idx / n, j = idx % n;
    long long row = (long long)b * 4 * n;
    real i = sigmoid(Ax[row + j] + Ah[row + j] + b_hh[j]);
    real f = sigmoid(Ax[row + n + j] + Ah[row + n + j] + b_hh[n + j]);
    real g = tanh(Ax[row + 2 * n + j] + Ah[row + 2 * n + j] + b_hh[2 * n + j]);
    real o = sigmoid(Ax[row + 3 * n + j] + Ah[row + 3 * n + j] + b_hh[3 * n + j]);
    real c = f * C_prev[idx] + i * g;
    gates[row + j] = i; gates[row + n + j] = f; gates[row + 2 * n + j] = g; gates[row + 3 * n + j] = o;
    C[idx] = c;
    H[idx] = o * tanh(c);
}

// dH = dH_above + dH_rec;  dC = dC_next + dH * O * (1 - tanh(C)^2)   (tanh(C) recomputed, not stored)
// dA = [dC*G*I(1-I), dC*C_prev*F(1-F), dC*I*(1-G^2), dH*tanh(C)*O(1-O)];  dC_prev = dC * F
// dC holds dC_next on entry and dC_prev on exit (each thread reads and writes only its own element).
extern "C" __global__ void lstm_backward(const real* dH_above, const real* dH_rec, real* dC,
                                         const real* gates, const real* C_prev, const real* C, real* dA,
                                         int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    int b = idx / n, j = idx % n;
    long long row = (long long)b * 4 * n;
    real i = gates[row + j], f = gates[row + n + j], g = gates[row + 2 * n + j], o = gates[row + 3 * n + j];
    real tanh_c = tanh(C[idx]);
    real dh = dH_above[idx] + dH_rec[idx];
    real dc = dC[idx] + dh * o * (real(1) - tanh_c * tanh_c);
    dA[row + j] = dc * g * i * (real(1) - i);
    dA[row + n + j] = dc * C_prev[idx] * f * (real(1) - f);
    dA[row + 2 * n + j] = dc * i * (real(1) - g * g);
    dA[row + 3 * n + j] = dh * tanh_c * o * (real(1) - o);
    dC[idx] = dc * f;
}
