"""Launchers for our CUDA kernels, called as the Numba kernels of engines/numba_kernels.py are (same names,
same arguments), so the fast engine runs unchanged on either. Each computes the grid from the sizes (one
thread per output element, BLOCK threads a block, the last block partly idle) and launches the kernel of
the same name in scratchrnn/kernels/. `kernels` is CudaKernels (GPU, CuPy arrays) or HostKernels (the
same sources built for the CPU, NumPy arrays): the grid arithmetic here is shared by both.

A cell's step kernels need no launcher of their own: asked for a kernel whose C signature ends with the sizes
(int B, int nh), as every cell's FORWARD_KERNEL and BACKWARD_KERNEL does, KernelOps returns one made from
that signature (`cell_step_launcher`). Adding a cell adds nothing here. The same for an optimiser's update
kernel (`update_launcher`), whose signature begins with (p, g, size, sumsq, theta).

Per time step of one layer: forward = 1 GEMM (cuBLAS, H_{t-1} W_hh) + 1 kernel (gates);
backward = 1 kernel (gate gradients) + 1 GEMM (dA W_hh^T).
"""
import numpy as np

from .modules import kernel_signatures, read_sources

BLOCK = 256
# sum_squares runs at most this many blocks: each thread sums its grid-stride share of the gradient, then
# adds it to the one accumulator with an atomicAdd. Atomics on one address are served one after another,
# so their number (blocks x BLOCK) is kept small whatever the size: 64 x 256 = 16,384 (for the deep LSTM's
# 826,396 parameters, about 50 each). Chosen from that reasoning; not yet timed on a GPU.
MAX_REDUCTION_BLOCKS = 64
# softmax_xent's first pass gives each thread a chunk of this many columns of one row: a vocabulary of 28
# is one chunk per row, one of 20,000 is 79, and no thread walks a whole long row.
SOFTMAX_CHUNK = 256
# The C types of kernel parameters that are not arrays, as NumPy scalars (RawKernel packs each argument by
# its own type, so a Python int would be 8 bytes where the kernel reads 4).
SCALARS = {"int": np.int32, "long long": np.int64}


def grid_for(n):
    """Enough blocks of BLOCK threads to cover n elements."""
    return ((int(n) + BLOCK - 1) // BLOCK,)


def i32(n):
    return np.int32(n)


STEP_SIZES = ["B", "nh"]                  # how a cell's step kernel ends: one thread per (b, j) of its state
UPDATE_HEAD = ["p", "g", "size", "sumsq", "theta"]    # how an optimiser's update kernel begins


class KernelOps:
    def __init__(self, kernels, xp):
        self.k, self.xp = kernels, xp
        self.sumsq = xp.zeros(1, dtype=np.float64)          # device scalar for the gradient norm
        self.scratch = {}                                    # softmax_xent's partial results, per shape
        self.signatures = {name: params for source in read_sources().values()
                           for name, params in kernel_signatures(source).items()}

    def __getattr__(self, name):
        signature = self.__dict__.get("signatures", {}).get(name)
        if signature and [p for _, p in signature[-2:]] == STEP_SIZES:
            launcher = self.cell_step_launcher(name)
        elif signature and [p for _, p in signature[:5]] == UPDATE_HEAD:
            launcher = self.update_launcher(name)
        else:
            raise AttributeError(name)
        setattr(self, name, launcher)                        # made once
        return launcher

    def scalars(self, params):
        """For each C parameter: None for a pointer, else the function that makes the scalar of its type."""
        return [None if ctype.endswith("*") else SCALARS.get(ctype, self.k.scalar) for ctype, _ in params]

    def cell_step_launcher(self, name):
        """A launcher for a cell's step kernel: the step function's arguments in order, then the sizes B and
        nh, taken from H (forward) or dH_above (backward), which every cell's step functions have; one
        thread per (b, j). Scalars are converted to the C type the kernel declares."""
        params = self.signatures[name][:-2]
        names = [p for _, p in params]
        sized_by = names.index("H") if "H" in names else names.index("dH_above")
        convert = self.scalars(params)

        def launch(*args):
            B, nh = args[sized_by].shape
            values = tuple(a if f is None else f(a) for f, a in zip(convert, args))
            self.k.launch(name, grid_for(B * nh), (BLOCK,), values + (i32(B), i32(nh)))
        launch.__name__ = name
        return launch

    def transpose(self, src, dst):
        """dst = src^T: CuPy's (or NumPy's) copy of the transposed view; a layout change, not a step of the math."""
        self.xp.copyto(dst, src.T)

    # Input rows, loss, update ----------------------------------------------------------------
    def gather_rows_bias(self, W, ids, bias, out):
        rows, m = out.shape
        self.k.launch("gather_rows_bias", grid_for(rows * m), (BLOCK,), (W, ids, bias, out, i32(rows), i32(m)))

    def scatter_add_rows(self, dW, ids, dA):
        """dW[ids[r]] += dA[r]. The rows sorted by id (the key id * rows + r is unique, so any sort gives the
        same order: ascending r within an id) and the start of each id's rows, then one thread per (v, j)."""
        xp, (V, m), rows = self.xp, dW.shape, ids.shape[0]
        order = xp.argsort(ids * rows + xp.arange(rows, dtype=np.int64))
        starts = xp.searchsorted(ids[order], xp.arange(V + 1, dtype=np.int64)).astype(np.int64)
        self.k.launch("scatter_add_rows", grid_for(V * m), (BLOCK,), (dW, order, starts, dA, i32(V), i32(m)))

    def softmax_xent(self, logits, y, row_loss):
        """row_loss[r] = the cross-entropy of row r; logits <- dloss/dlogits of the mean loss. Three passes
        (kernels/softmax_xent.cu): per (row, chunk of columns), per row, per element."""
        rows, V = logits.shape
        chunks = (V + SOFTMAX_CHUNK - 1) // SOFTMAX_CHUNK
        key = (rows, chunks, logits.dtype)
        if key not in self.scratch:
            self.scratch[key] = tuple(self.xp.empty(n, logits.dtype) for n in (rows * chunks, rows * chunks, rows))
        part_max, part_sum, lse = self.scratch[key]
        self.k.launch("softmax_xent_partial", grid_for(rows * chunks), (BLOCK,),
                      (logits, part_max, part_sum, i32(rows), i32(V), i32(SOFTMAX_CHUNK), i32(chunks)))
        self.k.launch("softmax_xent_rows", grid_for(rows), (BLOCK,),
                      (logits, y, part_max, part_sum, lse, row_loss, i32(rows), i32(V), i32(chunks)))
        self.k.launch("softmax_xent_grad", grid_for(rows * V), (BLOCK,), (logits, y, lse, i32(rows), i32(V)))

    def update_launcher(self, name):
        """A launcher for an optimiser's update kernel (kernels/optim.cu), called as its Numba twin is:
        (p, g, theta, *state, t, lr, *hyperparameters). sum_squares first, then the update, one thread per
        element, the clipping factor worked out on the device. Returns the norm as a 0-d device array."""
        convert = self.scalars(self.signatures[name])[5:]

        def launch(p, g, theta, *rest):
            size = p.shape[0]
            self.sumsq.fill(0)
            self.k.launch("sum_squares", (min(grid_for(size)[0], MAX_REDUCTION_BLOCKS),), (BLOCK,),
                          (g, np.int64(size), self.sumsq))
            values = tuple(a if f is None else f(a) for f, a in zip(convert, rest))
            self.k.launch(name, grid_for(size), (BLOCK,), (p, g, np.int64(size), self.sumsq, self.k.scalar(theta))
                          + values)
            return self.xp.sqrt(self.sumsq[0])
        launch.__name__ = name
        return launch
