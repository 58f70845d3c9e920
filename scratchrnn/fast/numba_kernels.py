"""Numba twins of the fused elementwise kernels (CPU fast path).

Each function is the loop body of one CUDA kernel in scratchrnn/kernels/, run over all (b, j) on the
CPU; each computes exactly the equations of the readable cell in scratchrnn/cells/ (tests hold them
to it). One time step of one layer costs: one GEMM (H_{t-1} W_hh) and one of these fused kernels
forward; one fused kernel and one GEMM (dA W_hh^T) backward. Everything else is hoisted out of the
time loop (see engine.py).

Shapes: B batch, H hidden, G gates; gate blocks are stacked along the last axis in PyTorch's order.
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

# Constants typed float32: float32 math stays float32 (float64 inputs promote them, exactly).
HALF, ONE, ZERO = np.float32(0.5), np.float32(1.0), np.float32(0.0)

# tanh as a rational function p(x)/q(x) on [-9, 9] (the coefficients of Eigen's float tanh):
# a few ulp from the true value in float32, and plain arithmetic, so the compiler vectorises the
# loop (16 lanes of AVX-512) where a call to libm's tanhf would go one element at a time.
_A = [np.float32(c) for c in (4.89352455891786e-03, 6.37261928875436e-04, 1.48572235717979e-05,
                              5.12229709037114e-08, -8.60467152213735e-11, 2.00018790482477e-13,
                              -2.76076847742355e-16)]
_B = [np.float32(c) for c in (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04,
                              1.19825839466702e-06)]
A1, A3, A5, A7, A9, A11, A13 = _A
B0, B2, B4, B6 = _B
CLAMP = np.float32(7.90531110763549805)

# How every kernel is compiled. error_model="numpy": no Python zero-division checks around `/`
# (they stop the loop from being vectorised). fastmath without 'nnan'/'ninf': a NaN still comes
# out as NaN, so a diverging run is still seen.
kernel = njit(cache=True, error_model="numpy", fastmath={"nsz", "contract", "arcp", "afn", "reassoc"})


def tanh(x):
    """tanh for the kernels: the vectorisable rational form for float32, libm's tanh for float64
    (which must agree with the NumPy reference to 1e-10)."""


@overload(tanh, inline="always")
def _tanh_overload(x):
    if x == types.float32:
        def tanh_float32(x):
            x = min(max(x, -CLAMP), CLAMP)
            x2 = x * x
            p = x2 * (x2 * (x2 * (x2 * (x2 * (x2 * A13 + A11) + A9) + A7) + A5) + A3) + A1
            q = x2 * (x2 * (x2 * B6 + B4) + B2) + B0
            return x * p / q
        return tanh_float32
    return lambda x: math.tanh(x)


@njit(cache=True, error_model="numpy", inline="always")
def sigmoid(x):
    return HALF * (tanh(HALF * x) + ONE)


# ----------------------------------------------------------------------------------------------
# LSTM   A = Ax + Ah + b_hh = [Ai, Af, Ag, Ao];  C = F*C_prev + I*G;  H = O*tanh(C)
# ----------------------------------------------------------------------------------------------

@kernel
def lstm_forward(Ax, Ah, b_hh, C_prev, gates, C, H):
    """Ax, Ah, gates (B, 4H); b_hh (4H,); C_prev, C, H (B, H). gates <- [I, F, G, O].

    Two loops per row instead of one: each touches few arrays, so the compiler can prove they do
    not overlap and vectorises them (one fused loop over seven arrays ran 5x slower in float32)."""
    B, n = C.shape
    for b in range(B):
        for j in range(4 * n):                   # every gate: sigma, except G = tanh (third block)
            a = Ax[b, j] + Ah[b, j] + b_hh[j]
            gates[b, j] = tanh(a) if 2 * n <= j < 3 * n else sigmoid(a)
        for j in range(n):                       # C = F * C_prev + I * G;  H = O * tanh(C)
            c = gates[b, n + j] * C_prev[b, j] + gates[b, j] * gates[b, 2 * n + j]
            C[b, j] = c
            H[b, j] = gates[b, 3 * n + j] * tanh(c)


@kernel
def lstm_backward(dH_above, dH_rec, dC, gates, C_prev, C, dA):
    """dH = dH_above + dH_rec (from the layer above and from step t+1).
    dC (B, H) holds dC_next on entry and dC_prev = dC * F on exit. dA (B, 4H) <- gate gradients.
    Two loops per row (see lstm_forward): the first leaves dc = dC_next + dH O (1 - tanh(C)^2) in dC."""
    B, n = C.shape
    for b in range(B):
        for j in range(n):
            o = gates[b, 3 * n + j]
            tanh_c = tanh(C[b, j])
            dh = dH_above[b, j] + dH_rec[b, j]
            dA[b, 3 * n + j] = dh * tanh_c * o * (ONE - o)
            dC[b, j] = dC[b, j] + dh * o * (ONE - tanh_c * tanh_c)
        for j in range(n):
            i, f, g = gates[b, j], gates[b, n + j], gates[b, 2 * n + j]
            dc = dC[b, j]
            dA[b, j] = dc * g * i * (ONE - i)
            dA[b, n + j] = dc * C_prev[b, j] * f * (ONE - f)
            dA[b, 2 * n + j] = dc * i * (ONE - g * g)
            dC[b, j] = dc * f


# ----------------------------------------------------------------------------------------------
# GRU   R = s(Xr + Hr);  Z = s(Xz + Hz);  N = tanh(Xn + R*Hn);  H = (1-Z)*N + Z*H_prev
# ----------------------------------------------------------------------------------------------

@kernel
def gru_forward(Ax, Ah, b_hh, H_prev, gates, Hn, H):
    """Ax (B, 3H) with b_xh; Ah (B, 3H) = H_prev W_hh without bias. gates <- [R, Z, N]; Hn <- Hn.
    Three short loops per row, each over few arrays, so that each is vectorised (see lstm_forward)."""
    B, n = H.shape
    for b in range(B):
        for j in range(2 * n):                   # R and Z
            gates[b, j] = sigmoid(Ax[b, j] + (Ah[b, j] + b_hh[j]))
        for j in range(n):                       # N = tanh(Xn + R * Hn)
            hn = Ah[b, 2 * n + j] + b_hh[2 * n + j]
            Hn[b, j] = hn
            gates[b, 2 * n + j] = tanh(Ax[b, 2 * n + j] + gates[b, j] * hn)
        for j in range(n):                       # H = (1 - Z) * N + Z * H_prev
            z = gates[b, n + j]
            H[b, j] = (ONE - z) * gates[b, 2 * n + j] + z * H_prev[b, j]


@kernel
def gru_backward(dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh):
    """dH = dH_above + dH_rec + dH_skip. dH_skip holds dH_{t+1} * Z_{t+1} on entry and dH * Z on
    exit (the direct path to H_{t-1}). dAx, dAh (B, 3H) <- gradients of the input and hidden parts."""
    B, n = H_prev.shape
    for b in range(B):
        for j in range(n):
            r, z, nn = gates[b, j], gates[b, n + j], gates[b, 2 * n + j]
            dh = dH_above[b, j] + dH_rec[b, j] + dH_skip[b, j]
            dan = dh * (ONE - z) * (ONE - nn * nn)
            dar = dan * Hn[b, j] * r * (ONE - r)
            daz = dh * (H_prev[b, j] - nn) * z * (ONE - z)
            dAx[b, j], dAx[b, n + j], dAx[b, 2 * n + j] = dar, daz, dan
            dAh[b, j], dAh[b, n + j], dAh[b, 2 * n + j] = dar, daz, dan * r
            dH_skip[b, j] = dh * z


# ----------------------------------------------------------------------------------------------
# RNN   H = phi(Ax + Ah + b_hh), phi = tanh or ReLU
# ----------------------------------------------------------------------------------------------

@kernel
def rnn_forward(Ax, Ah, b_hh, H, relu):
    B, n = H.shape
    for b in range(B):
        for j in range(n):
            a = Ax[b, j] + Ah[b, j] + b_hh[j]
            H[b, j] = (a if a > 0 else ZERO) if relu else tanh(a)


@kernel
def rnn_backward(dH_above, dH_rec, H, dA, relu):
    B, n = H.shape
    for b in range(B):
        for j in range(n):
            dh = dH_above[b, j] + dH_rec[b, j]
            h = H[b, j]
            dA[b, j] = (dh if h > 0 else ZERO) if relu else dh * (ONE - h * h)


# ----------------------------------------------------------------------------------------------
# Input rows (one-hot input), softmax cross-entropy, clipping with SGD
# ----------------------------------------------------------------------------------------------

@kernel
def gather_rows_bias(W, ids, bias, out):
    """out[n] = W[ids[n]] + bias: one-hot rows times W, without the one-hot matrix."""
    for r in range(ids.shape[0]):
        row = ids[r]
        for j in range(out.shape[1]):
            out[r, j] = W[row, j] + bias[j]


@kernel
def scatter_add_rows(dW, ids, dA):
    """dW[ids[n]] += dA[n]: the backward of `gather_rows_bias` with respect to W."""
    for r in range(ids.shape[0]):
        row = ids[r]
        for j in range(dA.shape[1]):
            dW[row, j] += dA[r, j]


@kernel
def softmax_xent(logits, y, row_loss):
    """In one pass per row: row_loss[n] = log sum exp(logits[n] - m) - (logits[n, y_n] - m), and
    logits <- dloss/dlogits = (softmax - onehot(y)) / N for the mean loss over N rows."""
    N, V = logits.shape
    for r in range(N):
        m = logits[r, 0]
        for v in range(1, V):
            m = max(m, logits[r, v])
        s = 0.0
        for v in range(V):
            s += math.exp(logits[r, v] - m)
        row_loss[r] = math.log(s) - (logits[r, y[r]] - m)
        for v in range(V):
            logits[r, v] = math.exp(logits[r, v] - m) / s / N
        logits[r, y[r]] -= 1.0 / N


@kernel
def clip_sgd(params, grads, lr, theta):
    """norm = ||grads||; params -= lr * min(1, theta / norm) * grads. Returns the norm before clipping.
    theta <= 0 means no clipping."""
    sq = 0.0
    for i in range(grads.shape[0]):
        sq += np.float64(grads[i]) * grads[i]
    norm = math.sqrt(sq)
    scale = min(1.0, theta / (norm + 1e-12)) if theta > 0 else 1.0
    step = lr * scale
    for i in range(params.shape[0]):
        params[i] -= step * grads[i]
    return norm
