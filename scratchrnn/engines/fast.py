"""The fast engine: the same mathematics as cells/ and output.py, arranged for speed.

What changes against the reference (and nothing else):

1. Hoisted GEMMs. Only H_{t-1} W_hh (forward) and dAh_t W_hh^T (backward) depend on the previous
   step; everything else is done once per chunk over all T*B rows:
       Ax     = X W_xh + b_xh             (T*B, G*nh)  one GEMM, or a row gather for one-hot input (on the CPU
                                                         a gather of B rows at each step instead, into one
                                                         (B, G*nh) buffer that the step's kernel reads from the
                                                         cache: GRU +0-3%, LSTM +1%, RNN +0-2% at 1 thread,
                                                         +3-5% at 2, against the chunk's Ax gathered at once)
       dW_hh  = H_prev^T dAh              (nh, G*nh)   one GEMM over the chunk
       dW_xh  = X^T dAx,  dX = dAx W_xh^T              one GEMM each (a row scatter for one-hot: on the CPU one
                                                         step's B rows at each step, while they are in the cache)
       db_xh  = column sums of dAx                     for one-hot input those of dW_xh: V rows, not T*B
       db_hh  = column sums of dAh                     copied from db_xh where dAh is dAx (every block of the
                                                         LSTM and the RNN, the GRU's first two: cell.SHARED_BLOCKS)
2. Fused steps: each cell's step_forward and step_backward run as one kernel per step and layer, its
   fused twin (the cell's FORWARD_KERNEL and BACKWARD_KERNEL in `ops`): Numba on the CPU, our CUDA C
   on the GPU. The kernels take the step functions' arguments, by name: this engine allocates a buffer
   for each (cells.step_shapes, with a time axis) and binds them once per workspace.
3. Preallocated workspaces, reused for every chunk of the same shape: no allocation in the step,
   GEMMs write into their destination (`out=`), parameters are updated in place.
4. Softmax cross-entropy and its gradient in one pass; clipping and the optimiser's update in one pass over
   the flat buffers (after the norm's).
5. The recurrent GEMMs' layout (recurrent_layout below), on the CPU: W_hh^T is packed once per training chunk,
   contiguous; for some widths, BLAS kernels and thread counts the forward computes (H_{t-1} W_hh)^T =
   W_hh^T H_{t-1}^T and transposes the result back (ops.transpose) before the step's kernel; the backward computes
   dA_t W_hh^T from W_hh^T, or for some as (W_hh dA_t^T)^T, transposed back.
6. The CPU's GEMMs through MKL where it is installed and chosen (mkl.py: 1.5-1.8x OpenBLAS's speed at the
   recurrent GEMMs' shapes on an Intel Xeon), else NumPy's matmul (its OpenBLAS); CuPy's (cuBLAS) on a GPU. With
   MKL, W_hh and W_hh^T are also packed once per training chunk in MKL's own form (mkl.PackedB), which each
   per-step GEMM reads as it is.

Per step and layer: forward (1 row gather, layer 0 on the CPU) + 1 GEMM (+ 1 transpose, for some layouts) + 1 fused
kernel; backward 1 fused kernel (+ 1 row scatter, layer 0 on the CPU) + 1 GEMM (+ 1 transpose, for some layouts).
Nothing here knows which cell it runs: every per-cell fact is read off the cell module.
"""
import inspect
from collections import OrderedDict
from types import SimpleNamespace

import numpy as np

from ..backend import numpy_blas_kernels, numpy_blas_threads, numpy_blas_threads_change_sums
from ..cells import step_shapes
from . import mkl
from .clipping import clipping_threshold

MAX_WORKSPACES = 4          # chunk shapes kept at once: training, validation, generation, and one spare

# The recurrent GEMMs' layout on the CPU, which depends on the BLAS: the kernels NumPy's OpenBLAS runs
# (backend.numpy_blas), or MKL.
#
# With its AVX2 kernels (Haswell, Zen), 32 rows: dA_t W_hh^T runs at 53% of a core's peak when OpenBLAS reads W_hh^T
# as a transposed view of W_hh and at 85% from a contiguous copy, so W_hh^T is packed once per chunk. Forward,
# H_{t-1} W_hh is slow when a row of W_hh spans a multiple of 2 KiB (512 float32 gate columns, 1024, 2048, ...: rows
# that far apart share the cache's sets): 261 us for the LSTM's 256 x 1024 against 184 for the transposed product
# W_hh^T H_{t-1}^T, which comes out as (G*nh, B) and costs about 10 us to transpose back. For other widths the two
# forms are level (GRU 256 x 768: 143 against 138 + 7), and below 512 columns the transposed one is slower.
# Measured over nh = 128..1024 and G = 1, 3, 4 (AMD EPYC, 2026-11-25, README: 1.06-1.35x at 9 of the 10 widths of a
# multiple of 2 KiB, 0.98x at the tenth); step, same-process A/B: LSTM +5-7%, tanh RNN 512 +1-3% (1 thread) and
# +4-8% (2 threads); the GRU's 768 columns -2-0% when forced.
#
# With its AVX-512 kernels (SkylakeX and later), the product with 32 columns is the fast one at every width. One
# core, LSTM 256 x 1024, GRU 256 x 768 and RNN 512 x 512: forward W_hh^T H_{t-1}^T 95, 70, 99 us against H_{t-1} W_hh
# 177, 85, 131; backward W_hh dA_t^T (from dA_t^T, a transposed view of dA_t: no copy) 102, 76, 100 us against
# dA_t W_hh^T 122, 93, 127, its (nh, B) result transposed back in 1.6 us. Step, same-process A/B (AMD EPYC family 26,
# 2026-12-02, README): the transposed forward LSTM +9-10%, tanh RNN 512 +10-11%, GRU 256 +1-13%; the transposed
# backward on top LSTM +3-5%, GRU +5-10%, RNN +8-10%. So both are transposed, at every width.
#
# With more than one BLAS thread, whatever the kernels: OpenBLAS splits a product over the rows of its result, and
# a product with B = 32 rows splits into two of 16, which its kernels run slowly; the transposed product has G*nh
# rows, which split evenly. AMD EPYC family 25 (Zen 3, AVX2 kernels), 2026-12-02, 2 threads, alone: forward LSTM
# 231 -> 181 us, GRU 194 -> 151, RNN 257 -> 203 (transpose back included); backward 217 -> 196, 164 -> 152,
# 227 -> 187. Step, same-process A/B, three passes (README): LSTM +5%, +8%, +3%, GRU +20%, +6%, +9%, tanh RNN +7%,
# +3%, +10% against the layouts of the AVX2 rule above. At one thread the AVX2 rule stands.
#
# With MKL instead (mkl.py; Intel Xeon, Sapphire Rapids class, AVX-512, 2026-12-02, README "CPU speed", round
# eight) both stay direct, with W_hh and W_hh^T in MKL's packed form (mkl.PackedB, packed once per training chunk):
# a plain cblas_sgemm packs its B operand at every call, a large part of the work when A has 32 rows. The GEMM alone,
# one thread then two, plain against packed: forward LSTM 217 -> 181 us, 136 -> 104; GRU 158 -> 130, 109 -> 83; RNN
# 193 -> 176, 133 -> 109; backward 210 -> 184, 137 -> 115; 165 -> 139, 110 -> 88; 204 -> 178, 131 -> 108. Step,
# same-process A/B against the plain GEMMs in round eight's first layouts (the forward transposed at two threads
# where a row of W_hh spans a multiple of 2 KiB), tok/s over PyTorch's, two passes: two threads GRU 2.35/1.83x,
# 2.36/2.07x, RNN 512 1.90/1.68x, 2.01/1.70x; LSTM 0.88/0.93x, 1.08/1.17x, then three more 1.08/0.99x, 1.06/0.97x,
# 1.02/1.06x, and in the timed profile 45.25 against 47.18 ms a step (recurrent GEMMs 13.03 against 14.38 ms,
# transposes 1.42 against 3.08); one thread LSTM 1.12/1.03x, 1.13/1.18x, GRU 1.90/2.15x, 1.80/1.66x, RNN
# 1.80/1.93x, 1.70/1.62x: this machine's noise between passes (5-10%) is as large as the gain there.
#
# With a CPU BLAS only (cuBLAS has no such preference, and a transpose is one more launch per step on the GPU).
TRANSPOSED_FORWARD_ROW_BYTES = 2048
AVX512_BLAS_KERNELS = frozenset({"SkylakeX", "Cooperlake", "SapphireRapids"})
MKL_KERNELS = "MKL"                 # the `kernels` of recurrent_layout when the GEMMs go through MKL (mkl.py)


def recurrent_layout(W_hh, kernels, threads=1):
    """(transposed forward, transposed backward): whether the engine computes H_{t-1} W_hh as (W_hh^T H_{t-1}^T)^T
    and dA_t W_hh^T as (W_hh dA_t^T)^T on the CPU, for the BLAS's `kernels` (MKL_KERNELS, or OpenBLAS's:
    backend.numpy_blas_kernels()) on `threads` threads (blas_now): with MKL neither (its GEMMs take W_hh packed);
    with OpenBLAS both, with AVX-512 kernels or more than one thread; else the forward alone, where a row of W_hh
    spans a multiple of TRANSPOSED_FORWARD_ROW_BYTES."""
    if kernels == MKL_KERNELS:
        return False, False
    spans_2kib = W_hh.shape[1] * W_hh.itemsize % TRANSPOSED_FORWARD_ROW_BYTES == 0
    if kernels in AVX512_BLAS_KERNELS or threads > 1:
        return True, True
    return spans_2kib, False


def blas_now(use_mkl):
    """(kernels, threads) of the CPU BLAS the engine's GEMMs run on now, recurrent_layout's arguments: MKL_KERNELS or
    OpenBLAS's kernels, and the threads of NumPy's BLAS (threadpool_limits changes them), to which MKL is set first:
    one setting for both."""
    threads = numpy_blas_threads()
    if use_mkl:
        mkl.sync_threads(threads)
        return MKL_KERNELS, threads
    return numpy_blas_kernels(), threads


def parameter_names(function):
    return tuple(inspect.signature(function).parameters)


class FastEngine:
    def __init__(self, model, ops, name):
        self.model, self.ops, self.name = model, ops, name
        self.xp, self.cell = model.xp, model.cell
        # Every GEMM: NumPy's (or CuPy's) matmul, or on the CPU MKL's where it is installed and chosen (mkl.py).
        self.mkl = self.xp is np and mkl.chosen()
        self.matmul = mkl.matmul if self.mkl else self.xp.matmul
        if self.mkl:
            self.name = f"{name} with MKL"
        self.forward_kernel = getattr(ops, self.cell.FORWARD_KERNEL)
        self.backward_kernel = getattr(ops, self.cell.BACKWARD_KERNEL)
        self.forward_names = parameter_names(self.cell.step_forward)
        self.backward_names = parameter_names(self.cell.step_backward)
        self.workspaces = OrderedDict()
        # Per layer: H_{t-1} W_hh computed as (W_hh^T H_{t-1}^T)^T in training chunks (the shapes never change).
        # One-hot input (no embedding) on the CPU: layer 0's input part is gathered step by step into one (B, G*nh)
        # buffer, which stays in the cache for the step's kernel, instead of all T steps at once before the loop.
        self.gather_per_step = self.xp is np and not model.embedding_dim
        # The recurrent GEMMs' layouts: chosen again at each training chunk, as the BLAS's threads may have changed.
        self.layout_rule = recurrent_layout if self.xp is np else None
        self.choose_layouts()
        # W_hh^T of each layer, packed once per training chunk: the parameters', whatever the chunk's shape.
        self.W_hhT = [self.xp.empty(model.params[f"l{k}.W_hh"].shape[::-1], model.dtype)
                      for k in range(model.num_layers)]
        # With MKL, also W_hh and W_hh^T in MKL's packed form (mkl.PackedB, in each workspace: it depends on B), once
        # per training chunk, for the direct per-step GEMMs: each spares the packing of W_hh that a GEMM does.
        self.pack_recurrent = self.mkl

    def choose_layouts(self):
        """Per layer, self.transposed_forward and self.transposed_backward: layout_rule's answer for its W_hh, the
        kernels and the threads of the BLAS now (MKL runs as many threads as NumPy's BLAS); the direct GEMMs on a GPU
        (no layout_rule)."""
        m = self.model
        if self.layout_rule is None:
            layouts = [(False, False)] * m.num_layers
        else:
            kernels, threads = blas_now(self.mkl)
            layouts = [self.layout_rule(m.params[f"l{k}.W_hh"], kernels, threads) for k in range(m.num_layers)]
        self.transposed_forward = [forward for forward, _ in layouts]
        self.transposed_backward = [backward for _, backward in layouts]

    # ------------------------------------------------------------------------------------------
    # Workspaces: allocated once per chunk shape (T, B), with every step's kernel arguments bound
    # ------------------------------------------------------------------------------------------

    def workspace(self, T, B):
        if (T, B) in self.workspaces:
            self.workspaces.move_to_end((T, B))
            return self.workspaces[(T, B)]
        if len(self.workspaces) >= MAX_WORKSPACES:
            self.workspaces.popitem(last=False)
        m, xp, cell = self.model, self.xp, self.cell
        nh, V, dt = m.num_hiddens, m.vocab_size, m.dtype
        shapes = step_shapes(cell, B, nh)
        ws = SimpleNamespace(
            shape=(T, B), logits=xp.empty((T * B, V), dt), row_loss=xp.empty(T * B, dt),
            dHs=[xp.empty((T, B, nh), dt), xp.empty((T, B, nh), dt)],      # gradient from above, two in turn
            dH_rec=xp.empty((B, nh), dt), dH_recT=xp.empty((nh, B), dt),     # dH_recT: the transposed backward's
            carried={name: xp.empty((B, nh), dt) for name in cell.CARRIED})
        if m.embedding_dim:
            D = m.embedding_dim
            ws.emb, ws.demb, ws.zero_bias = xp.empty((T * B, D), dt), xp.empty((T * B, D), dt), xp.zeros(D, dt)
        ws.layers = []
        for k in range(m.num_layers):
            per_step = k == 0 and self.gather_per_step
            layer = SimpleNamespace(
                per_step=per_step,                                              # Ax gathered at each step
                Ax=xp.empty((1 if per_step else T,) + shapes["Ax"], dt),      # input part of the gates: 1 or T steps
                Ah=xp.empty(shapes["Ah"], dt),                                  # H_{t-1} W_hh, one step
                AhT=xp.empty(shapes["Ah"][::-1], dt),                          # its transpose, as the GEMM writes it
                states={S: xp.empty((T + 1, B, nh), dt) for S in cell.STATE},   # [0]: initial, [t+1]: after step t
                saved={name: xp.empty((T,) + shapes[name], dt) for name in cell.SAVED})
            # A cell whose step_backward writes one dA has the same gradient for the input and hidden parts; dAh is
            # kept for the chunk's dW_hh. A cell with two (the GRU), on a layer whose one-hot input is gathered at
            # each step, scatters dAx into dW_xh at each step: one step's buffer serves for its dAx.
            one_dA = "dA" in self.backward_names
            layer.dAx = xp.empty((1 if per_step and not one_dA else T,) + shapes["dAx"], dt)
            layer.dAx_t = [layer.dAx[min(t, len(layer.dAx) - 1)] for t in range(T)]     # step t's dAx
            layer.dAh = layer.dAx if one_dA else xp.empty((T,) + shapes["dAh"], dt)
            layer.H = layer.states["H"]
            layer.Hd = xp.empty((T, B, nh), dt) if m.dropout > 0 else None     # its output after dropout
            layer.out = layer.H[1:]                                   # what the layer above reads
            layer.W_hh_packed = layer.W_hhT_packed = None             # MKL's packed W_hh, W_hh^T: training only
            layer.forward_args = [self.bind(self.forward_names, ws, layer, k, t) for t in range(T)]
            layer.backward_args = [self.bind(self.backward_names, ws, layer, k, t) for t in range(T)]
            ws.layers.append(layer)
        self.workspaces[(T, B)] = ws
        return ws

    def bind(self, names, ws, layer, k, t):
        """The kernel arguments of step t of layer k: a buffer (or a view of one) for each parameter name."""
        m = self.model
        arguments = []
        for name in names:
            base = name[:-len("_prev")] if name.endswith("_prev") else None
            if name == "Ax":
                a = layer.Ax[0 if layer.per_step else t]
            elif name == "Ah":
                a = layer.Ah
            elif name == "b_hh":
                a = m.params[f"l{k}.b_hh"]
            elif name in layer.states:
                a = layer.states[name][t + 1]                          # the state after step t
            elif base in layer.states:
                a = layer.states[base][t]                              # the state before step t
            elif name in layer.saved:
                a = layer.saved[name][t]
            elif name == "dH_above":
                a = ws.dHs[(m.num_layers - 1 - k) % 2][t]
            elif name == "dH_rec":
                a = ws.dH_rec
            elif name in ws.carried:
                a = ws.carried[name]
            elif name in ("dA", "dAx"):
                a = layer.dAx_t[t]
            elif name == "dAh":
                a = layer.dAh[t]
            elif name in m.step_options:
                a = m.step_options[name]
            else:
                raise TypeError(f"the fast engine has no buffer for the step argument {name!r}")
            arguments.append(a)
        return tuple(arguments)

    # ------------------------------------------------------------------------------------------
    # Forward and backward of one chunk
    # ------------------------------------------------------------------------------------------

    def forward_layers(self, ws, X, state, masks=None, packed=False):
        """Every layer through every step, each layer's output through its dropout mask when masks are given
        (layer.out: what the layer above reads); then the logits of the top layer in ws.logits. packed: each
        layer's self.W_hhT holds W_hh^T and its layer.W_hh_step W_hh or MKL's packed form of it (training chunks),
        for the transposed forward GEMM where it is faster, or the packed one."""
        m, xp, ops = self.model, self.xp, self.ops
        T, B = X.shape
        nh = m.num_hiddens
        ids = X.reshape(-1)
        for k, layer in enumerate(ws.layers):
            W_xh, W_hh, b_xh = m.params[f"l{k}.W_xh"], m.params[f"l{k}.W_hh"], m.params[f"l{k}.b_xh"]
            if layer.per_step:
                pass                                              # one-hot input, gathered at each step below
            elif k == 0 and m.embedding_dim:                     # Emb = E[X], then a GEMM like any layer
                ops.gather_rows_bias(m.params["E"], ids, ws.zero_bias, ws.emb)
                self.matmul(ws.emb, W_xh, out=layer.Ax.reshape(T * B, -1))
                layer.Ax += b_xh
            elif k == 0:                                          # one-hot input: a row gather of W_xh
                ops.gather_rows_bias(W_xh, ids, b_xh, layer.Ax.reshape(T * B, -1))
            else:
                self.matmul(ws.layers[k - 1].out.reshape(T * B, nh), W_xh, out=layer.Ax.reshape(T * B, -1))
                layer.Ax += b_xh
            for S, value in zip(self.cell.STATE, state[k]):
                layer.states[S][0] = value
            transposed = packed and self.transposed_forward[k]
            W_hh_step = layer.W_hh_step if packed else W_hh             # W_hh, or MKL's packed form of it
            for t in range(T):
                if layer.per_step:                                       # X_t W_xh + b_xh: rows of W_xh
                    ops.gather_rows_bias(W_xh, X[t], b_xh, layer.Ax[0])
                if transposed:
                    self.matmul(self.W_hhT[k], layer.H[t].T, out=layer.AhT)   # (H_{t-1} W_hh)^T = W_hh^T H_{t-1}^T
                    ops.transpose(layer.AhT, layer.Ah)
                else:
                    self.matmul(layer.H[t], W_hh_step, out=layer.Ah)
                self.forward_kernel(*layer.forward_args[t])
            if masks is None:
                layer.out = layer.H[1:]
            else:                                                     # dropout.dropout_forward, in place
                layer.out = xp.multiply(layer.H[1:], masks[k], out=layer.Hd)
        self.matmul(ws.layers[-1].out.reshape(T * B, nh), m.params["W_hq"], out=ws.logits)
        ws.logits += m.params["b_q"]

    def final_state(self, ws):
        T = ws.shape[0]
        return [tuple(layer.states[S][T].copy() for S in self.cell.STATE) for layer in ws.layers]

    def forward(self, X, state):
        """Forward only. The logits returned are the workspace's: read them before the next call."""
        ws = self.workspace(*X.shape)
        self.forward_layers(ws, X, state)
        return ws.logits, self.final_state(ws)

    def start_backward(self, ws, dstate):
        """dH_rec starts from the gradient reaching H_T, each CARRIED buffer from the one reaching its
        state unless that is H (already in dH_rec); zero where dstate is None (truncated BPTT)."""
        ws.dH_rec[...] = 0 if dstate is None else dstate[0]
        for name, S in self.cell.CARRIED.items():
            j = self.cell.STATE.index(S)
            ws.carried[name][...] = 0 if dstate is None or j == 0 else dstate[j]

    def state_gradient(self, ws, extra=()):
        """For each state array, the sum of the buffers that carry gradient into it (dH_rec into H):
        dL/d(state before step 1) once the walk back is done (or dL/dH_t with `extra` = (dH_above,))."""
        into = {S: [] for S in self.cell.STATE}
        into["H"] += [ws.dH_rec, *extra]
        for name, S in self.cell.CARRIED.items():
            into[S].append(ws.carried[name])
        out = []
        for S in self.cell.STATE:
            total = into[S][0].copy()
            for buffer in into[S][1:]:
                total += buffer
            out.append(total)
        return tuple(out)

    def loss_and_grad(self, X, Y, state, dstate=None, masks=None, state_grad=True):
        """Same contract as the reference engine's."""
        m, xp, ops = self.model, self.xp, self.ops
        T, B = X.shape
        nh = m.num_hiddens
        ws = self.workspace(T, B)
        ids = X.reshape(-1)
        self.choose_layouts()
        for k, layer in enumerate(ws.layers):          # once per chunk, for both directions: W_hh^T, contiguous,
            W_hh = m.params[f"l{k}.W_hh"]              # or MKL's packed W_hh and W_hh^T
            if self.transposed_forward[k] or not self.pack_recurrent:
                ops.transpose(W_hh, self.W_hhT[k])
            if not self.pack_recurrent:
                layer.W_hh_step, layer.W_hhT_step = W_hh, self.W_hhT[k]
                continue
            if layer.W_hh_packed is None:              # for products with B rows, at this workspace's first chunk
                K, N = W_hh.shape
                layer.W_hh_packed, layer.W_hhT_packed = mkl.PackedB(B, K, N, m.dtype), mkl.PackedB(B, N, K, m.dtype)
            layer.W_hh_step, layer.W_hhT_step = layer.W_hh_packed.pack(W_hh), layer.W_hhT_packed.pack(W_hh.T)
        self.forward_layers(ws, X, state, masks, packed=True)
        new_state = self.final_state(ws)

        # Output layer and loss; ws.logits becomes dloss/dlogits in place.
        H_top = ws.layers[-1].out.reshape(T * B, nh)
        ops.softmax_xent(ws.logits, Y.reshape(-1), ws.row_loss)
        loss = ws.row_loss.mean()
        self.matmul(H_top.T, ws.logits, out=m.grads["W_hq"])
        ws.logits.sum(axis=0, out=m.grads["b_q"])
        self.matmul(ws.logits, m.params["W_hq"].T, out=ws.dHs[0].reshape(T * B, nh))
        if masks is not None:                                         # dropout.dropout_backward, in place
            ws.dHs[0] *= masks[-1]

        # Backward, layer by layer from the top, each walking time backwards.
        dstate0 = [None] * m.num_layers
        flow = np.zeros((m.num_layers, T)) if m.trace_gradient_flow else None
        for k in reversed(range(m.num_layers)):
            layer = ws.layers[k]
            W_xh, g = m.params[f"l{k}.W_xh"], {n: m.grads[f"l{k}.{n}"] for n in ("W_xh", "W_hh", "b_xh", "b_hh")}
            dHs = ws.dHs[(m.num_layers - 1 - k) % 2]
            self.start_backward(ws, None if dstate is None else dstate[k])
            transposed, W_hh = self.transposed_backward[k], m.params[f"l{k}.W_hh"]
            if layer.per_step:                                 # one-hot input gathered at each step: scattered too
                g["W_xh"].fill(0)
            for t in reversed(range(T)):
                if flow is not None:                           # ||dL/dH_t||, diagnostics only
                    flow[k, t] = float(xp.linalg.norm(self.state_gradient(ws, (dHs[t],))[0]))
                self.backward_kernel(*layer.backward_args[t])
                if layer.per_step:                             # dW_xh[X_t] += dAx_t, while dAx_t is in the cache
                    ops.scatter_add_rows(g["W_xh"], X[t], layer.dAx_t[t])
                if t == 0 and not state_grad:                  # dL/dH_0: not wanted, not computed
                    break
                if transposed:                                                       # to H_{t-1}:
                    self.matmul(W_hh, layer.dAh[t].T, out=ws.dH_recT)                 # (dA_t W_hh^T)^T = W_hh dA_t^T
                    ops.transpose(ws.dH_recT, ws.dH_rec)
                else:
                    self.matmul(layer.dAh[t], layer.W_hhT_step, out=ws.dH_rec)
            if state_grad:
                dstate0[k] = self.state_gradient(ws)

            dAx2d, dAh2d = layer.dAx.reshape(-1, layer.dAx.shape[-1]), layer.dAh.reshape(T * B, -1)
            self.matmul(layer.H[:T].reshape(T * B, nh).T, dAh2d, out=g["W_hh"])   # one GEMM for the chunk
            one_hot = k == 0 and not m.embedding_dim
            if one_hot and not layer.per_step:                 # every row of the chunk at once (on a GPU)
                g["W_xh"].fill(0)
                ops.scatter_add_rows(g["W_xh"], ids, dAx2d)
            if one_hot:             # each row of dAx went into one row of dW_xh: the same column sums, over V rows
                g["W_xh"].sum(axis=0, out=g["b_xh"])
            else:
                dAx2d.sum(axis=0, out=g["b_xh"])
            if layer.dAh is layer.dAx:                  # one dA for both parts (LSTM, RNN): the same sum
                g["b_hh"][...] = g["b_xh"]
            else:                                       # the blocks where dAh is dAx (the GRU's dAr, dAz) too
                shared = self.cell.SHARED_BLOCKS * nh
                g["b_hh"][:shared] = g["b_xh"][:shared]
                dAh2d[:, shared:].sum(axis=0, out=g["b_hh"][shared:])
            if k == 0 and m.embedding_dim:
                self.matmul(ws.emb.T, dAx2d, out=g["W_xh"])
                self.matmul(dAx2d, W_xh.T, out=ws.demb)                  # dEmb, then rows into dE
                m.grads["E"].fill(0)
                ops.scatter_add_rows(m.grads["E"], ids, ws.demb)
            elif k > 0:
                self.matmul(ws.layers[k - 1].out.reshape(T * B, nh).T, dAx2d, out=g["W_xh"])
                below = ws.dHs[(m.num_layers - k) % 2]
                self.matmul(dAx2d, W_xh.T, out=below.reshape(T * B, nh))        # to the layer below
                if masks is not None:                                 # through its dropout
                    below *= masks[k - 1]
        if flow is not None:
            m.gradient_flow = flow
        return loss, new_state, dstate0 if state_grad else None

    def update(self, optimizer, lr, theta):
        """Clipping and the optimiser's update fused, one pass over the flat buffers after the norm's (the
        rule of `clipping_threshold`): the optimiser's kernel. Returns the gradient norm before clipping."""
        m, rule = self.model, optimizer.rule
        optimizer.t += 1
        kernel = getattr(self.ops, rule.KERNEL)
        return kernel(m.flat_params, m.flat_grads, clipping_threshold(theta), *optimizer.state.values(), optimizer.t,
                      lr, *(optimizer.hyper[k] for k in rule.DEFAULTS))

    def threads_change_sums(self, then, now, batch_size):
        """Whether training on `then` BLAS threads and on `now` adds up the GEMMs' sums in other orders (a resume's
        note, cli.note_other_sums): with MKL, on any other count (one thread and two end an epoch with other bits);
        with OpenBLAS, whose threads split a product over its result's rows and columns, where the recurrent GEMMs'
        layouts (recurrent_layout) differ on the two counts; never on a GPU. Our kernels run on one thread on any
        count."""
        if self.layout_rule is None or then == now:
            return False
        if self.mkl or numpy_blas_threads_change_sums():
            return True
        kernels, W_hhs = numpy_blas_kernels(), [self.model.params[f"l{k}.W_hh"] for k in range(self.model.num_layers)]
        return any(self.layout_rule(W, kernels, then) != self.layout_rule(W, kernels, now) for W in W_hhs)
