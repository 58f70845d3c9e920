"""Numba twins of the step functions of scratchrnn/cells/ (the CPU fast path).

Each cell kernel mirrors one step function line by line: the same name as the cell's FORWARD_KERNEL or
BACKWARD_KERNEL, the step function's arguments in its order, the same split of work, and the same
lines, written as loops over every (b, j) of the batch and the hidden units; the CUDA kernel of the same
name in scratchrnn/kernels/ is the body of those loops, one thread per (b, j). The tests call the step
function, this twin and the CUDA kernel (built for the host) with the same arguments and compare.

One time step of one layer costs: one GEMM (H_{t-1} W_hh) and one of these fused kernels forward; one
fused kernel and one GEMM (dA W_hh^T) backward. Everything else is hoisted out of the time loop (fast.py).

Shapes (the key of cells/__init__.py): B batch, nh hidden units, G gate blocks stacked along the last
axis in PyTorch's order.
"""
import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .numba_cache import choose_cache_folder

choose_cache_folder(__file__)       # before the first kernel: where Numba can cache (numba_cache.py)

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
# LSTM: mirrors cells/lstm.py step_forward / step_backward; CUDA twin: kernels/lstm.cu
# ----------------------------------------------------------------------------------------------

@kernel
def lstm_forward(Ax, Ah, b_hh, C_prev, gates, C, H):
    """cells.lstm.step_forward: A = Ax + Ah + b_hh; gates <- [I, F, C_tilde, O]; C = F*C_prev + I*C_tilde;
    H = O*tanh(C). One short loop per gate block and one for C and H, each over few arrays, so the compiler
    can prove they do not overlap and vectorises each (one fused loop over seven arrays ran 5x slower in
    float32; one loop over all four blocks choosing tanh or sigma per column computed both: 1.7x slower).
    Each loop counts from 0 and adds the block's offset: a loop over range(2 nh, 3 nh) kept Numba's
    negative-index check and was not vectorised (6x slower)."""
    B, nh = C.shape
    for b in range(B):
        for j in range(2 * nh):                  # I, F = sigma(A)
            gates[b, j] = sigmoid(Ax[b, j] + Ah[b, j] + b_hh[j])
        for j in range(nh):                      # C_tilde = tanh(A)
            k = 2 * nh + j
            gates[b, k] = tanh(Ax[b, k] + Ah[b, k] + b_hh[k])
        for j in range(nh):                      # O = sigma(A)
            k = 3 * nh + j
            gates[b, k] = sigmoid(Ax[b, k] + Ah[b, k] + b_hh[k])
        for j in range(nh):                      # C = F * C_prev + I * C_tilde;  H = O * tanh(C)
            c = gates[b, nh + j] * C_prev[b, j] + gates[b, j] * gates[b, 2 * nh + j]
            C[b, j] = c
            H[b, j] = gates[b, 3 * nh + j] * tanh(c)


@kernel
def lstm_backward(dH_above, dH_rec, dC, gates, C_prev, C, dA):
    """cells.lstm.step_backward: dH = dH_above + dH_rec; dC += dH*O*(1 - tanh(C)^2); dA <- the four gate
    gradients; dC *= F (dC_next on entry, dC_prev on exit). One short loop per gate block (see lstm_forward): the
    first writes dAo and leaves dC_t in dC, the next three dAi, dAf, dAc, the last dC_prev. One loop for the three
    blocks and dC_prev was not vectorised: 13.2 -> 6.6 us for 32 x 256."""
    B, nh = C.shape
    for b in range(B):
        for j in range(nh):
            o = gates[b, 3 * nh + j]
            tanh_c = tanh(C[b, j])
            dh = dH_above[b, j] + dH_rec[b, j]
            dA[b, 3 * nh + j] = dh * tanh_c * o * (ONE - o)
            dC[b, j] = dC[b, j] + dh * o * (ONE - tanh_c * tanh_c)
        for j in range(nh):                      # dAi = dC * C_tilde * I * (1 - I)
            i = gates[b, j]
            dA[b, j] = dC[b, j] * gates[b, 2 * nh + j] * i * (ONE - i)
        for j in range(nh):                      # dAf = dC * C_prev * F * (1 - F)
            f = gates[b, nh + j]
            dA[b, nh + j] = dC[b, j] * C_prev[b, j] * f * (ONE - f)
        for j in range(nh):                      # dAc = dC * I * (1 - C_tilde^2)
            c_tilde = gates[b, 2 * nh + j]
            dA[b, 2 * nh + j] = dC[b, j] * gates[b, j] * (ONE - c_tilde * c_tilde)
        for j in range(nh):                      # dC_prev = dC * F
            dC[b, j] = dC[b, j] * gates[b, nh + j]


# ----------------------------------------------------------------------------------------------
# GRU: mirrors cells/gru.py step_forward / step_backward; CUDA twin: kernels/gru.cu
# ----------------------------------------------------------------------------------------------

@kernel
def gru_forward(Ax, Ah, b_hh, H_prev, gates, Hn, H):
    """cells.gru.step_forward: R = s(Xr + Hr); Z = s(Xz + Hz); Hn = Ahn + b_hn; N = tanh(Xn + R*Hn);
    H = (1-Z)*N + Z*H_prev. Three short loops per row, each over few arrays, so that each is vectorised.
    The second computes R again from its inputs (bit for bit the R of the first loop) instead of reading it
    back from gates: a loop reading one block of gates while writing another was not vectorised (2.7x slower)."""
    B, nh = H.shape
    for b in range(B):
        for j in range(2 * nh):                  # R and Z
            gates[b, j] = sigmoid(Ax[b, j] + (Ah[b, j] + b_hh[j]))
        for j in range(nh):                      # Hn, N
            hn = Ah[b, 2 * nh + j] + b_hh[2 * nh + j]
            Hn[b, j] = hn
            r = sigmoid(Ax[b, j] + (Ah[b, j] + b_hh[j]))
            gates[b, 2 * nh + j] = tanh(Ax[b, 2 * nh + j] + r * hn)
        for j in range(nh):                      # H
            z = gates[b, nh + j]
            H[b, j] = (ONE - z) * gates[b, 2 * nh + j] + z * H_prev[b, j]


@kernel
def gru_backward(dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh):
    """cells.gru.step_backward: dH = dH_above + dH_rec + dH_skip; dAn, dAr, dAz; dAx = [dAr, dAz, dAn];
    dAh = [dAr, dAz, dAn*R]; dH_skip <- dH*Z. One short loop per line, each vectorised (see lstm_forward): one loop
    writing all eight arrays was not (17.9 -> 9.7 us for 32 x 256). dH waits in dAh's N block, written last."""
    B, nh = H_prev.shape
    for b in range(B):
        for j in range(nh):                      # dH
            dAh[b, 2 * nh + j] = dH_above[b, j] + dH_rec[b, j] + dH_skip[b, j]
        for j in range(nh):                      # dAz = dH * (H_prev - N) * Z * (1 - Z)
            z = gates[b, nh + j]
            dAx[b, nh + j] = dAh[b, 2 * nh + j] * (H_prev[b, j] - gates[b, 2 * nh + j]) * z * (ONE - z)
        for j in range(nh):                      # dH_skip = dH * Z
            dH_skip[b, j] = dAh[b, 2 * nh + j] * gates[b, nh + j]
        for j in range(nh):                      # dAn = dH * (1 - Z) * (1 - N^2)
            k = 2 * nh + j
            z, n = gates[b, nh + j], gates[b, k]
            dAx[b, k] = dAh[b, k] * (ONE - z) * (ONE - n * n)
        for j in range(nh):                      # dAr = dAn * Hn * R * (1 - R)
            r = gates[b, j]
            dAx[b, j] = dAx[b, 2 * nh + j] * Hn[b, j] * r * (ONE - r)
        for j in range(nh):                      # dAh = [dAr, dAz, dAn * R]
            k = 2 * nh + j
            dAh[b, k] = dAx[b, k] * gates[b, j]
        for j in range(2 * nh):
            dAh[b, j] = dAx[b, j]


# ----------------------------------------------------------------------------------------------
# RNN: mirrors cells/rnn.py step_forward / step_backward; CUDA twin: kernels/rnn.cu
# ----------------------------------------------------------------------------------------------

@kernel
def rnn_forward(Ax, Ah, b_hh, H, relu):
    """cells.rnn.step_forward: H = phi(Ax + Ah + b_hh), phi = ReLU if relu else tanh."""
    B, nh = H.shape
    for b in range(B):
        for j in range(nh):
            a = Ax[b, j] + Ah[b, j] + b_hh[j]
            H[b, j] = (a if a > 0 else ZERO) if relu else tanh(a)


@kernel
def rnn_backward(dH_above, dH_rec, H, dA, relu):
    """cells.rnn.step_backward: dA = (dH_above + dH_rec) * phi'(A), phi' = [H > 0] or 1 - H^2."""
    B, nh = H.shape
    for b in range(B):
        for j in range(nh):
            dh = dH_above[b, j] + dH_rec[b, j]
            h = H[b, j]
            dA[b, j] = (dh if h > 0 else ZERO) if relu else dh * (ONE - h * h)


# ----------------------------------------------------------------------------------------------
# Transpose: for the recurrent GEMMs' layout (fast.py)
# ----------------------------------------------------------------------------------------------

TILE = 8


@kernel
def transpose(src, dst):
    """dst = src^T, one TILE x TILE tile at a time, so that the tile's rows of src and of dst stay in the L1 cache
    (NumPy's copy of a transposed view walks src down its columns). Whole tiles have fixed trip counts, which the
    compiler unrolls into 64 moves at constant offsets; the edges that do not fill a tile go element by element.
    For the step's Ah^T (1024 x 32): 19.5 -> 9.6 us against tiles cut with min(); W_hh (256 x 768): 156 -> 56 us."""
    rows, cols = src.shape
    whole_cols, whole_rows = cols - cols % TILE, rows - rows % TILE
    for i0 in range(0, whole_cols, TILE):
        for j0 in range(0, whole_rows, TILE):
            for i in range(TILE):
                for j in range(TILE):
                    dst[i0 + i, j0 + j] = src[j0 + j, i0 + i]
    for i in range(whole_cols):                  # the last rows of src, below the whole tiles
        for j in range(whole_rows, rows):
            dst[i, j] = src[j, i]
    for i in range(whole_cols, cols):            # the last columns of src
        for j in range(rows):
            dst[i, j] = src[j, i]


# ----------------------------------------------------------------------------------------------
# Input rows (one-hot input), softmax cross-entropy
# ----------------------------------------------------------------------------------------------

@kernel
def gather_rows_bias(W, ids, bias, out):
    """out[r] = W[ids[r]] + bias: one-hot rows times W, without the one-hot matrix (cells.common.project_input)."""
    for r in range(ids.shape[0]):
        row = ids[r]
        for j in range(out.shape[1]):
            out[r, j] = W[row, j] + bias[j]


@kernel
def scatter_add_rows(dW, ids, dA):
    """dW[ids[r]] += dA[r]: the backward of `gather_rows_bias` with respect to W (backend.scatter_add_rows)."""
    for r in range(ids.shape[0]):
        row = ids[r]
        for j in range(dA.shape[1]):
            dW[row, j] += dA[r, j]


@kernel
def softmax_xent(logits, y, row_loss):
    """output.softmax_cross_entropy and its backward, in one pass per row: row_loss[r] = log sum exp(logits[r]
    - m) - (logits[r, y_r] - m), and logits <- (softmax - onehot(y)) / rows, the gradient of the mean loss.
    One exp per element: the row keeps exp(logits - m) until the sum is known, then is scaled by 1 / (sum rows)."""
    rows, V = logits.shape
    for r in range(rows):
        m = logits[r, 0]
        for v in range(1, V):
            m = max(m, logits[r, v])
        row_loss[r] = m - logits[r, y[r]]               # - (logits[r, y_r] - m), before the row is overwritten
        s = 0.0
        for v in range(V):
            e = math.exp(logits[r, v] - m)
            logits[r, v] = e
            s += e
        row_loss[r] += math.log(s)
        scale = 1.0 / (s * rows)
        for v in range(V):
            logits[r, v] *= scale
        logits[r, y[r]] -= 1.0 / rows


# ----------------------------------------------------------------------------------------------
# Clipping and the update, fused: the norm in a first pass, then one pass that clips and updates.
# Each mirrors the `update` of its module in scratchrnn/optimizers/ (its twin in kernels/optim.cu), with
# theta in place of scale: scale = theta / norm when norm > theta, else 1 (engines/clipping.py).
# ----------------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy", inline="always")
def clipping_scale(g, theta):
    """(||g||, the clipping factor): the norm summed in float64, whatever the buffers' type."""
    sq = 0.0
    for i in range(g.shape[0]):
        sq += np.float64(g[i]) * g[i]
    norm = math.sqrt(sq)
    return norm, (theta / norm if norm > theta else 1.0)


@kernel
def sgd_update(p, g, theta, t, lr, weight_decay):
    """optimizers/sgd.py: p -= lr * (scale * g + wd * p). Returns the norm before clipping."""
    norm, scale = clipping_scale(g, theta)
    step, decay = lr * scale, lr * weight_decay
    for i in range(p.shape[0]):
        p[i] -= step * g[i] + decay * p[i]
    return norm


@kernel
def momentum_update(p, g, theta, u, t, lr, momentum, nesterov, weight_decay):
    """optimizers/momentum.py: d = scale * g + wd * p; u = mu * u + d; p -= lr * (d + mu * u or u)."""
    norm, scale = clipping_scale(g, theta)
    for i in range(p.shape[0]):
        d = scale * g[i] + weight_decay * p[i]
        u[i] = momentum * u[i] + d
        p[i] -= lr * (d + momentum * u[i] if nesterov else u[i])
    return norm


@kernel
def adam_update(p, g, theta, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """optimizers/adam.py: Adam (L2 decay in d) or AdamW (decoupled: p *= 1 - lr * wd first); the moments,
    then p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
    norm, scale = clipping_scale(g, theta)
    step, root = lr / (1.0 - beta1 ** t), math.sqrt(1.0 - beta2 ** t)
    shrink = 1.0 - lr * weight_decay if decoupled else 1.0
    l2 = 0.0 if decoupled else weight_decay
    for i in range(p.shape[0]):
        d = scale * g[i] + l2 * p[i]
        p[i] *= shrink
        m[i] = beta1 * m[i] + (1.0 - beta1) * d
        v[i] = beta2 * v[i] + (1.0 - beta2) * d * d
        p[i] -= step * m[i] / (math.sqrt(v[i]) / root + eps)
    return norm


@kernel
def rmsprop_update(p, g, theta, s, b, t, lr, alpha, eps, momentum, weight_decay):
    """optimizers/rmsprop.py: d = scale * g + wd * p; s = alpha * s + (1 - alpha) d^2; then the step
    d / (sqrt(s) + eps), through the momentum buffer b when momentum > 0."""
    norm, scale = clipping_scale(g, theta)
    for i in range(p.shape[0]):
        d = scale * g[i] + weight_decay * p[i]
        s[i] = alpha * s[i] + (1.0 - alpha) * d * d
        step = d / (math.sqrt(s[i]) + eps)
        if momentum > 0:
            b[i] = momentum * b[i] + step
            step = b[i]
        p[i] -= lr * step
    return norm
