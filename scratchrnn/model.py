"""The character language model: L stacked recurrent layers and a dense output layer.

    tokens X (T, B) --layer 0--> Hs_0 (T, B, H) --layer 1--> ... --> Hs_{L-1} --dense--> logits (T*B, V)

Layer 0 reads one-hot vectors of the vocabulary, computed as a row gather of its W_xh (V, G*H);
layer k > 0 reads the hidden states of layer k-1.

All parameters live in one flat buffer (and all gradients in another), with a named view for each:
the update and the clipping are one operation over one array, and the memory layout is plain to see.

Our names inside (W_xh, W_hh, b_xh, b_hh per layer; W_hq, b_q) are the math's; at the boundary
`state_dict` / `load_state_dict` speak PyTorch's names and layouts, so weights move both ways:

    rnn.weight_ih_l{k} = W_xh.T (G*H, in)     rnn.weight_hh_l{k} = W_hh.T (G*H, H)
    rnn.bias_ih_l{k}   = b_xh   (G*H,)        rnn.bias_hh_l{k}   = b_hh   (G*H,)
    fc.weight          = W_hq.T (V, H)        fc.bias            = b_q    (V,)
    embedding.weight   = E      (V, D)        (only with embedding_dim: a learnable embedding, embedding.py)
"""
import math
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from . import output
from .backend import get_array_module, to_numpy
from .cells import CELLS
from .checkpoint import atomic_write
from .embedding import embedding_backward, embedding_forward
from .errors import CheckpointError, ConfigError

NONLINEARITIES = ("tanh", "relu")
INITS = ("pytorch", "normal")
ENGINES = ("reference", "fast", "auto")


class RNNLM:
    """A deep recurrent language model trained by hand-written BPTT.

    cell: 'rnn' (tanh, or ReLU with nonlinearity='relu'), 'gru' or 'lstm'.
    init: 'pytorch' (every weight and bias U(-1/sqrt(H), 1/sqrt(H)), PyTorch's default) or 'normal'
          (the book's scratch scheme: weights N(0, 0.01^2), biases 0).
    engine: 'reference' (the readable cells in cells/), 'fast' (hoisted GEMMs and fused gate
          kernels: Numba on the CPU, our CUDA on the GPU), or 'auto' (fast).
    """

    def __init__(self, vocab_size, num_hiddens=256, num_layers=1, cell="lstm", nonlinearity="tanh",
                 device="cpu", dtype="float32", init="pytorch", seed=0, engine="auto", embedding_dim=None):
        for name, value in (("vocab size", vocab_size), ("hidden size", num_hiddens),
                            ("number of layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer (got {value!r})")
        if embedding_dim is not None and (not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1):
            raise ConfigError(f"embedding size must be a positive integer (got {embedding_dim!r})")
        if cell not in CELLS:
            raise ConfigError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        if nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"unknown nonlinearity {nonlinearity!r}; choose tanh or relu")
        if init not in INITS:
            raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.vocab_size, self.num_hiddens, self.num_layers = int(vocab_size), int(num_hiddens), int(num_layers)
        self.cell_name, self.nonlinearity, self.init, self.device = cell, nonlinearity, init, device
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)   # None: one-hot input
        self.cell = CELLS[cell]
        self.cell_options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.xp = get_array_module(device)
        self.dtype = np.dtype(dtype)

        # One flat buffer for the parameters, one for the gradients; named views into both.
        self.shapes = self.parameter_shapes()
        total = sum(math.prod(s) for s in self.shapes.values())
        self.flat_params = self.xp.zeros(total, dtype=self.dtype)
        self.flat_grads = self.xp.zeros(total, dtype=self.dtype)
        self.params, self.grads = OrderedDict(), OrderedDict()
        offset = 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            self.params[name] = self.flat_params[offset:offset + size].reshape(shape)
            self.grads[name] = self.flat_grads[offset:offset + size].reshape(shape)
            offset += size
        self.initialize(seed)

        if engine == "reference":
            self.engine = None
        else:
            from .fast import make_engine
            self.engine = make_engine(self)
        self.engine_name = "reference" if self.engine is None else self.engine.name
        # Diagnostics: when True, every backward stores ||dL/dH_t|| for each layer and time step in
        # self.gradient_flow, an array (L, T) (row 0 is the bottom layer, column 0 the first step).
        self.trace_gradient_flow = False
        self.gradient_flow = None

    # ------------------------------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------------------------------

    def parameter_shapes(self):
        V, H, G = self.vocab_size, self.num_hiddens, self.cell.GATES
        shapes = OrderedDict()
        if self.embedding_dim:
            shapes["E"] = (V, self.embedding_dim)                   # learnable embedding (embedding.py)
        for k in range(self.num_layers):
            n_in = (self.embedding_dim or V) if k == 0 else H
            shapes[f"l{k}.W_xh"] = (n_in, G * H)
            shapes[f"l{k}.W_hh"] = (H, G * H)
            shapes[f"l{k}.b_xh"] = (G * H,)
            shapes[f"l{k}.b_hh"] = (G * H,)
        shapes["W_hq"] = (H, V)
        shapes["b_q"] = (V,)
        return shapes

    def initialize(self, seed=0):
        """Draw every parameter on the host in float64 from one seeded generator (so the CPU and the
        GPU start from the same numbers), then cast and copy into the buffer."""
        rng = np.random.default_rng(seed)
        bound = 1.0 / math.sqrt(self.num_hiddens)
        for name, shape in self.shapes.items():
            if name == "E":
                value = rng.normal(0.0, 1.0, size=shape)              # nn.Embedding's default
            elif self.init == "pytorch":
                value = rng.uniform(-bound, bound, size=shape)
            elif name.split(".")[-1].startswith("W"):
                value = rng.normal(0.0, 0.01, size=shape)
            else:
                value = np.zeros(shape)
            self.params[name][...] = self.xp.asarray(value, dtype=self.dtype)

    def layer_params(self, k):
        """The four arrays of layer k under the cell's names W_xh, W_hh, b_xh, b_hh."""
        return {name: self.params[f"l{k}.{name}"] for name in ("W_xh", "W_hh", "b_xh", "b_hh")}

    def num_parameters(self):
        return int(self.flat_params.size)

    def begin_state(self, batch_size):
        """Zero initial state: a list over layers of the cell's state tuple ((H,) or (H, C)), each (B, H)."""
        return [self.cell.zero_state(batch_size, self.num_hiddens, self.xp, self.dtype)
                for _ in range(self.num_layers)]

    # ------------------------------------------------------------------------------------------
    # Forward and backward through the whole network (the reference engine)
    # ------------------------------------------------------------------------------------------

    def forward(self, X, state):
        """X: (T, B) token ids; state from `begin_state`. -> logits (T*B, V), final state, cache."""
        layer_input, caches, new_state = X, [], []
        if self.embedding_dim:
            layer_input = embedding_forward(self.params["E"], X)              # (T, B, D)
        for k in range(self.num_layers):
            Hs, s, cache = self.cell.forward(self.layer_params(k), layer_input, state[k], **self.cell_options)
            caches.append(cache)
            new_state.append(s)
            layer_input = Hs                                                 # (T, B, H)
        T, B, H = layer_input.shape
        H_top = layer_input.reshape(T * B, H)                               # time-major rows
        logits = output.dense_forward(H_top, self.params["W_hq"], self.params["b_q"])
        return logits, new_state, (caches, H_top, (T, B), X)

    def backward(self, cache, dlogits, dstate=None):
        """Fill self.grads from dloss/dlogits; dstate: gradient reaching the final state (None: zero,
        which is what truncated BPTT means). Returns the gradient with respect to the initial state."""
        caches, H_top, (T, B), X = cache
        dH, dW_hq, db_q = output.dense_backward(H_top, self.params["W_hq"], dlogits)
        self.grads["W_hq"][...] = dW_hq
        self.grads["b_q"][...] = db_q
        dHs = dH.reshape(T, B, self.num_hiddens)
        dstate0 = [None] * self.num_layers
        traces = [[] if self.trace_gradient_flow else None for _ in range(self.num_layers)]
        for k in reversed(range(self.num_layers)):
            dX, dstate0[k], grads = self.cell.backward(
                self.layer_params(k), dHs, caches[k], None if dstate is None else dstate[k], trace=traces[k])
            for name, g in grads.items():
                self.grads[f"l{k}.{name}"][...] = g
            dHs = dX                                                         # to the layer below
        if self.embedding_dim:
            self.grads["E"][...] = embedding_backward(self.params["E"], X, dHs)
        if self.trace_gradient_flow:
            self.gradient_flow = np.array([trace[::-1] for trace in traces])    # (L, T), time forwards
        return dstate0

    def loss_and_grad(self, X, Y, state):
        """One chunk of truncated BPTT. X, Y: (T, B) ids on this model's device.
        -> (mean loss as a 0-d device array, final state, dloss/dinitial state). Fills self.grads."""
        if self.engine is not None:
            return self.engine.loss_and_grad(X, Y, state)
        logits, new_state, cache = self.forward(X, state)
        y = Y.reshape(-1)                                                    # time-major, as logits
        loss, P = output.softmax_cross_entropy(logits, y)
        dstate0 = self.backward(cache, output.softmax_cross_entropy_backward(P, y))
        return loss, new_state, dstate0

    def clip_and_sgd(self, lr, theta):
        """Global-norm clipping then SGD, over the flat buffers. Returns the norm before clipping."""
        if self.engine is not None:
            return self.engine.clip_and_sgd(lr, theta)
        xp = self.xp
        norm = xp.sqrt((self.flat_grads * self.flat_grads).sum())
        scale = xp.minimum(1.0, theta / (norm + 1e-12)) if theta is not None else 1.0
        self.flat_params -= (lr * scale) * self.flat_grads
        return norm

    # ------------------------------------------------------------------------------------------
    # PyTorch names at the boundary
    # ------------------------------------------------------------------------------------------

    def state_dict(self):
        """A dict of host NumPy arrays in PyTorch's names and layouts (see the module docstring)."""
        d = OrderedDict()
        for key, (ours, transposed) in self._torch_names().items():
            value = to_numpy(self.params[ours])
            d[key] = (value.T if transposed else value).copy()
        return d

    def _torch_names(self):
        """PyTorch key -> (our name, transposed?)."""
        names = OrderedDict()
        if self.embedding_dim:
            names["embedding.weight"] = ("E", False)
        for k in range(self.num_layers):
            names[f"rnn.weight_ih_l{k}"] = (f"l{k}.W_xh", True)
            names[f"rnn.weight_hh_l{k}"] = (f"l{k}.W_hh", True)
            names[f"rnn.bias_ih_l{k}"] = (f"l{k}.b_xh", False)
            names[f"rnn.bias_hh_l{k}"] = (f"l{k}.b_hh", False)
        names["fc.weight"] = ("W_hq", True)
        names["fc.bias"] = ("b_q", False)
        return names

    def load_state_dict(self, d):
        """Accept a dict of arrays in PyTorch's names and layouts (NumPy, or anything np.asarray takes).
        Every key is checked before anything is copied, so a failed load changes nothing."""
        names = self._torch_names()
        missing = [key for key in names if key not in d]
        if missing:
            raise CheckpointError(f"weights are missing key {missing[0]!r}"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        unexpected = [key for key in d if key not in names]
        if unexpected:
            raise CheckpointError(f"weights have unexpected key {unexpected[0]!r} (a model of another depth or kind?)")
        values = {}
        for key, (ours, transposed) in names.items():
            value = np.asarray(d[key])
            want = self.shapes[ours][::-1] if transposed else self.shapes[ours]
            if value.shape != tuple(want):
                raise CheckpointError(f"weights {key!r} have shape {value.shape}, this model needs {tuple(want)}")
            if not np.all(np.isfinite(value)):
                raise CheckpointError(f"weights {key!r} contain NaN or infinite values")
            values[ours] = value.T if transposed else value
        for ours, value in values.items():
            self.params[ours][...] = self.xp.asarray(value, dtype=self.dtype)

    def save_weights(self, path):
        """Write the state dict to an .npz file atomically (temporary file, fsync, rename)."""
        atomic_save_npz(path, self.state_dict())

    def load_weights(self, path):
        self.load_state_dict(load_npz(path))


def atomic_save_npz(path, arrays):
    """np.savez, written atomically (see checkpoint.atomic_write)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_npz(path):
    """Read every array of an .npz file (no pickle: opening a file from elsewhere runs no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {key: f[key] for key in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"weights file {str(path)!r} is truncated or corrupted ({e})") from None
