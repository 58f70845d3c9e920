// GRU, one time step of one layer, PyTorch's form [r, z, n].
// Mirrors cells/gru.py step_forward and step_backward line by line: the same names, the same arguments
// in the same order (then the sizes B, nh), one thread per (b, j). Numba twin: engines/numba_kernels.py.
#include "common.cuh"

// cells.gru.step_forward: R = s(Xr + Hr);  Z = s(Xz + Hz);  Hn = Ahn + b_hn;  N = tanh(Xn + R * Hn)
// H = (1 - Z) * N + Z * H_prev.   Ax, Ah, gates (B, 3nh); b_hh (3nh); H_prev, Hn, H (B, nh)
extern "C" __global__ void gru_forward(const real* Ax, const real* Ah, const real* b_hh, const real* H_prev,
                                       real* gates, real* Hn, real* H, int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    int b = idx / nh, j = idx % nh;
    long long row = (long long)b * 3 * nh;
    real r = sigmoid(Ax[row + j] + (Ah[row + j] + b_hh[j]));
    real z = sigmoid(Ax[row + nh + j] + (Ah[row + nh + j] + b_hh[nh + j]));
    real hn = Ah[row + 2 * nh + j] + b_hh[2 * nh + j];
    real n = tanh(Ax[row + 2 * nh + j] + r * hn);
    gates[row + j] = r; gates[row + nh + j] = z; gates[row + 2 * nh + j] = n;
    Hn[idx] = hn;
    H[idx] = (real(1) - z) * n + z * H_prev[idx];
}

// cells.gru.step_backward: dH = dH_above + dH_rec + dH_skip;  dAn = dH (1-Z)(1-N^2);  dAr = dAn Hn R(1-R)
// dAz = dH (H_prev-N) Z(1-Z);  dAx = [dAr, dAz, dAn];  dAh = [dAr, dAz, dAn * R];  dH_skip <- dH * Z
extern "C" __global__ void gru_backward(const real* dH_above, const real* dH_rec, real* dH_skip, const real* gates,
                                        const real* Hn, const real* H_prev, real* dAx, real* dAh, int B, int nh) {
    long long idx = thread_index();
    if (idx >= (long long)B * nh) return;
    int b = idx / nh, j = idx % nh;
    long long row = (long long)b * 3 * nh;
    real r = gates[row + j], z = gates[row + nh + j], n = gates[row + 2 * nh + j];
    real dh = dH_above[idx] + dH_rec[idx] + dH_skip[idx];
    real dan = dh * (real(1) - z) * (real(1) - n * n);
    real dar = dan * Hn[idx] * r * (real(1) - r);
    real daz = dh * (H_prev[idx] - n) * z * (real(1) - z);
    dAx[row + j] = dar; dAx[row + nh + j] = daz; dAx[row + 2 * nh + j] = dan;
    dAh[row + j] = dar; dAh[row + nh + j] = daz; dAh[row + 2 * nh + j] = dan * r;
    dH_skip[idx] = dh * z;
}
