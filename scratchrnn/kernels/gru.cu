// GRU gates, one time step of one layer, PyTorch's form [r, z, n]. NumPy twin: scratchrnn/cells/gru.py.
#include "common.cuh"

// R = s(Xr + Hr);  Z = s(Xz + Hz);  N = tanh(Xn + R * Hn);  H = (1 - Z) * N + Z * H_prev
// Ax (B, 3n) includes b_xh; Ah (B, 3n) = H_prev W_hh without bias, b_hh added here.
// gates <- [R, Z, N]; Hn <- Ahn + b_hn (kept for the backward).
extern "C" __global__ void gru_forward(const real* Ax, const real* Ah, const real* b_hh, const real* H_prev,
                                       real* gates, real* Hn, real* H, int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    int b = idx / n, j = idx % n;
    long long row = (long long)b * 3 * n;
    real r = sigmoid(Ax[row + j] + (Ah[row + j] + b_hh[j]));
    real z = sigmoid(Ax[row + n + j] + (Ah[row + n + j] + b_hh[n + j]));
    real hn = Ah[row + 2 * n + j] + b_hh[2 * n + j];
    real nn = tanh(Ax[row + 2 * n + j] + r * hn);
    gates[row + j] = r; gates[row + n + j] = z; gates[row + 2 * n + j] = nn;
    Hn[idx] = hn;
    H[idx] = (real(1) - z) * nn + z * H_prev[idx];
}

// dH = dH_above + dH_rec + dH_skip;  dAn = dH (1-Z)(1-N^2);  dAr = dAn Hn R(1-R);  dAz = dH (H_prev-N) Z(1-Z)
// dAx = [dAr, dAz, dAn];  dAh = [dAr, dAz, dAn * R];  dH_skip <- dH * Z (the direct path to H_prev)
extern "C" __global__ void gru_backward(const real* dH_above, const real* dH_rec, real* dH_skip,
                                        const real* gates, const real* Hn, const real* H_prev,
                                        real* dAx, real* dAh, int B, int n) {
    long long idx = thread_index();
    if (idx >= (long long)B * n) return;
    int b = idx / n, j = idx % n;
    long long row = (long long)b * 3 * n;
    real r = gates[row + j], z = gates[row + n + j], nn = gates[row + 2 * n + j];
    real dh = dH_above[idx] + dH_rec[idx] + dH_skip[idx];
    real dan = dh * (real(1) - z) * (real(1) - nn * nn);
    real dar = dan * Hn[idx] * r * (real(1) - r);
    real daz = dh * (H_prev[idx] - nn) * z * (real(1) - z);
    dAx[row + j] = dar; dAx[row + n + j] = daz; dAx[row + 2 * n + j] = dan;
    dAh[row + j] = dar; dAh[row + n + j] = daz; dAh[row + 2 * n + j] = dan * r;
    dH_skip[idx] = dh * z;
}
