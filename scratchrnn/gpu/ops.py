"""Launchers for our CUDA kernels, with the same names and arguments as fast/numba_kernels.py, so
the fast engine runs unchanged on either. Each computes the grid from the sizes (one thread per
output element, BLOCK threads a block, the last block partly idle) and launches the kernel of the
same name in scratchrnn/kernels/. `kernels` is CudaKernels (GPU, CuPy arrays) or HostKernels (the
same sources built for the CPU, NumPy arrays): the grid arithmetic here is shared by both.

Per time step of one layer: forward = 1 GEMM (cuBLAS, H_{t-1} W_hh) + 1 kernel (gates);
backward = 1 kernel (gate gradients) + 1 GEMM (dA W_hh^T).
"""
import numpy as np

BLOCK = 256
# sum_squares runs at most this many blocks: each thread sums its grid-stride share of the gradient, then
# adds it to the one accumulator with an atomicAdd. Atomics on one address are served one after another,
# so their number (blocks x BLOCK) is kept small whatever the size: 64 x 256 = 16,384 (for the deep LSTM's
# 826,396 parameters, about 50 each). Chosen from that reasoning; not yet timed on a GPU.
MAX_REDUCTION_BLOCKS = 64


def grid_for(n):
    """Enough blocks of BLOCK threads to cover n elements."""
    return ((int(n) + BLOCK - 1) // BLOCK,)


def i32(n):
    return np.int32(n)


class KernelOps:
    def __init__(self, kernels, xp):
        self.k, self.xp = kernels, xp
        self.sumsq = xp.zeros(1, dtype=np.float64)          # device scalar for the gradient norm

    # LSTM ------------------------------------------------------------------------------------
    def lstm_forward(self, Ax, Ah, b_hh, C_prev, gates, C, H):
        B, n = C.shape
        self.k.launch("lstm_forward", grid_for(B * n), (BLOCK,), (Ax, Ah, b_hh, C_prev, gates, C, H, i32(B), i32(n)))

    def lstm_backward(self, dH_above, dH_rec, dC, gates, C_prev, C, dA):
        B, n = C.shape
        self.k.launch("lstm_backward", grid_for(B * n), (BLOCK,),
                      (dH_above, dH_rec, dC, gates, C_prev, C, dA, i32(B), i32(n)))

    # GRU -------------------------------------------------------------------------------------
    def gru_forward(self, Ax, Ah, b_hh, H_prev, gates, Hn, H):
        B, n = H.shape
        self.k.launch("gru_forward", grid_for(B * n), (BLOCK,), (Ax, Ah, b_hh, H_prev, gates, Hn, H, i32(B), i32(n)))

    def gru_backward(self, dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh):
        B, n = H_prev.shape
        self.k.launch("gru_backward", grid_for(B * n), (BLOCK,),
                      (dH_above, dH_rec, dH_skip, gates, Hn, H_prev, dAx, dAh, i32(B), i32(n)))

    # RNN -------------------------------------------------------------------------------------
    def rnn_forward(self, Ax, Ah, b_hh, H, relu):
        B, n = H.shape
        self.k.launch("rnn_forward", grid_for(B * n), (BLOCK,), (Ax, Ah, b_hh, H, i32(relu), i32(B), i32(n)))

    def rnn_backward(self, dH_above, dH_rec, H, dA, relu):
        B, n = H.shape
        self.k.launch("rnn_backward", grid_for(B * n), (BLOCK,), (dH_above, dH_rec, H, dA, i32(relu), i32(B), i32(n)))

    # Input rows, loss, update ----------------------------------------------------------------
    def gather_rows_bias(self, W, ids, bias, out):
        N, m = out.shape
        self.k.launch("gather_rows_bias", grid_for(N * m), (BLOCK,), (W, ids, bias, out, i32(N), i32(m)))

    def scatter_add_rows(self, dW, ids, dA):
        V, m = dW.shape
        self.k.launch("scatter_add_rows", grid_for(V * m), (BLOCK,), (dW, ids, dA, i32(ids.shape[0]), i32(V), i32(m)))

    def softmax_xent(self, logits, y, row_loss):
        N, V = logits.shape
        self.k.launch("softmax_xent", grid_for(N), (BLOCK,), (logits, y, row_loss, i32(N), i32(V)))

    def clip_sgd(self, params, grads, lr, theta):
        """Returns the gradient norm before clipping as a 0-d device array (read it only to report)."""
        size = params.shape[0]
        self.sumsq.fill(0)
        reduction_grid = (min(grid_for(size)[0], MAX_REDUCTION_BLOCKS),)
        self.k.launch("sum_squares", reduction_grid, (BLOCK,), (grads, np.int64(size), self.sumsq))
        self.k.launch("clip_sgd", grid_for(size), (BLOCK,),
                      (params, grads, np.int64(size), self.sumsq, self.k.scalar(lr), self.k.scalar(theta)))
        return self.xp.sqrt(self.sumsq[0])
