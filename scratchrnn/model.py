"""The character language model: L stacked recurrent layers and a dense output layer.

    tokens X (T, B) --layer 0--> Hs_0 (T, B, nh) --layer 1--> ... --> Hs_{L-1} --dense--> logits (T*B, V)

Layer 0 reads one-hot vectors of the vocabulary, computed as a row gather of its W_xh (V, G*nh);
layer k > 0 reads the hidden states of layer k-1. The model owns the parameters; an engine (engines/)
computes the forward, the backward and the update with them.

All parameters live in one flat buffer (and all gradients in another), with a named view for each:
the update and the clipping are one operation over one array, and the memory layout is plain to see.

Our names inside (W_xh, W_hh, b_xh, b_hh per layer; W_hq, b_q) are the math's; at the boundary
`state_dict` / `load_state_dict` speak PyTorch's names and layouts, so weights move both ways:

    rnn.weight_ih_l{k} = W_xh.T (G*nh, ni)    rnn.weight_hh_l{k} = W_hh.T (G*nh, nh)
    rnn.bias_ih_l{k}   = b_xh   (G*nh,)       rnn.bias_hh_l{k}   = b_hh   (G*nh,)
    fc.weight          = W_hq.T (V, nh)       fc.bias            = b_q    (V,)
    embedding.weight   = E      (V, D)        (only with embedding_dim: a learnable embedding, embedding.py)
"""
import math
from collections import OrderedDict

import numpy as np

from .backend import check_memory, get_array_module, to_numpy
from .cells import CELLS, step_options, step_shapes
from .engines import ENGINES, clipping_threshold, make_engine, mkl
from .dropout import dropout_masks
from .errors import CheckpointError, ConfigError
from .optimizers import Optimizer

INITS = ("pytorch", "normal")
DTYPES = ("float32", "float64")
NONLINEARITIES = tuple(dict.fromkeys(n for cell in CELLS.values() for n in cell.NONLINEARITIES))
# What a model is built from when nothing else is said (the book's deep LSTM): `model_from_config`, the
# command line and the checkpoint manifest all read these, under these names.
MODEL_DEFAULTS = dict(cell="lstm", nonlinearity="tanh", layers=2, hidden=256, init="pytorch", dtype="float32",
                      seed=0, engine="fast", embedding=None, dropout=0.0)


class RNNLM:
    """A deep recurrent language model trained by hand-written BPTT.

    cell: 'rnn' (tanh, or ReLU with nonlinearity='relu'), 'gru' or 'lstm'.
    init: 'pytorch' (every weight and bias U(-1/sqrt(nh), 1/sqrt(nh)), PyTorch's default) or 'normal'
          (the book's scratch scheme: weights N(0, 0.01^2), biases 0).
    engine: 'fast' (hoisted GEMMs and fused step kernels: Numba on the CPU, our CUDA on the GPU) or
          'reference' (the readable cells in cells/, layer after layer); see engines/.

    The model owns the parameters (their names, layouts and initialisation); its engine computes with them.
    """

    def __init__(self, vocab_size, num_hiddens=MODEL_DEFAULTS["hidden"], num_layers=MODEL_DEFAULTS["layers"],
                 cell=MODEL_DEFAULTS["cell"], nonlinearity=MODEL_DEFAULTS["nonlinearity"], device="cpu",
                 dtype=MODEL_DEFAULTS["dtype"], init=MODEL_DEFAULTS["init"], seed=MODEL_DEFAULTS["seed"],
                 engine=MODEL_DEFAULTS["engine"], embedding_dim=MODEL_DEFAULTS["embedding"],
                 dropout=MODEL_DEFAULTS["dropout"]):
        for name, value in (("vocab size", vocab_size), ("hidden size", num_hiddens),
                            ("number of layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer (got {value!r})")
        if embedding_dim is not None and (not isinstance(embedding_dim, (int, np.integer)) or embedding_dim < 1):
            raise ConfigError(f"embedding size must be a positive integer (got {embedding_dim!r})")
        if cell not in CELLS:
            raise ConfigError(f"unknown cell {cell!r}; choose one of {', '.join(CELLS)}")
        if nonlinearity not in CELLS[cell].NONLINEARITIES:
            raise ConfigError(f"nonlinearity {nonlinearity!r} is not one of the {cell} cell's: "
                              f"{', '.join(CELLS[cell].NONLINEARITIES)}")
        if init not in INITS:
            raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
        if engine not in ENGINES:
            raise ConfigError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        if not (isinstance(dropout, (int, float, np.floating)) and 0 <= dropout < 1):
            raise ConfigError(f"dropout must be in [0, 1) (got {dropout!r})")
        if str(dtype) not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        self.vocab_size, self.num_hiddens, self.num_layers = int(vocab_size), int(num_hiddens), int(num_layers)
        self.cell_name, self.nonlinearity, self.init, self.device = cell, nonlinearity, init, device
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)   # None: one-hot input
        self.cell = CELLS[cell]
        self.step_options = step_options(self.cell, nonlinearity)      # {"relu": ...} for the RNN
        self.xp = get_array_module(device)
        self.dtype = np.dtype(dtype)

        # One flat buffer for the parameters, one for the gradients; named views into both.
        self.shapes = self.parameter_shapes()
        total = sum(math.prod(s) for s in self.shapes.values())
        check_memory(2 * total * self.dtype.itemsize, device,
                     f"a {num_layers}-layer {cell} of {num_hiddens} hidden units over {vocab_size} tokens "
                     f"({total:,} parameters, with their gradients)")
        self.move_parameters(self.xp.zeros(total, dtype=self.dtype))
        self.move_gradients(self.xp.zeros(total, dtype=self.dtype))
        self.initialize(seed)
        # Dropout between layers (dropout.py): its own generator, seeded from the run's seed; its state goes
        # into checkpoints. Masks are drawn for every training chunk, never for validation or generation.
        self.dropout = float(dropout)
        self.dropout_rng = np.random.default_rng([seed, 1])
        self.engine = make_engine(self, engine)
        self.sgd = None                                 # the book's optimiser, made when first asked for
        # Diagnostics: when True, every backward stores ||dL/dH_t|| for each layer and time step in
        # self.gradient_flow, an array (L, T) (row 0 is the bottom layer, column 0 the first step).
        self.trace_gradient_flow = False
        self.gradient_flow = None

    @property
    def engine_name(self):
        return self.engine.name

    # ------------------------------------------------------------------------------------------
    # Parameters
    # ------------------------------------------------------------------------------------------

    def named_views(self, flat):
        """name -> the view of `flat` (a flat buffer of every parameter, in self.shapes' order) that holds it."""
        views, offset = OrderedDict(), 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            views[name] = flat[offset:offset + size].reshape(shape)
            offset += size
        return views

    def move_parameters(self, flat):
        """The parameters from now on in `flat` (a flat array of this model's size and dtype, with their values in
        it: the fast-split engine's shared memory, engines/split.py), self.params its views."""
        self.flat_params, self.params = flat, self.named_views(flat)

    def move_gradients(self, flat):
        """The gradients from now on in `flat` (the fast-split worker's: the shared buffer it hands back), self.grads
        its views."""
        self.flat_grads, self.grads = flat, self.named_views(flat)

    def parameter_shapes(self):
        return parameter_shapes(self.cell_name, self.vocab_size, self.num_hiddens, self.num_layers, self.embedding_dim)

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
        """Zero initial state: a list over layers of the cell's STATE tuple ((H,) or (H, C)), each (B, nh)."""
        return [self.cell.zero_state(batch_size, self.num_hiddens, self.xp, self.dtype)
                for _ in range(self.num_layers)]

    # ------------------------------------------------------------------------------------------
    # Computing: everything goes through the engine (engines/__init__.py has the interface)
    # ------------------------------------------------------------------------------------------

    def forward(self, X, state):
        """X: (T, B) token ids on this model's device. -> logits (T*B, V), final state. No gradient."""
        return self.engine.forward(X, state)

    def loss_and_grad(self, X, Y, state, dstate=None, masks=None, state_grad=True):
        """One chunk of BPTT. X, Y: (T, B) ids on this model's device; dstate: a gradient reaching the
        final state (None: zero, truncated BPTT); masks: the dropout masks (L, T, B, nh), drawn here from the
        model's generator when dropout is on and none are given. -> (mean loss as a 0-d device array, final
        state, dloss/dinitial state; None for it with state_grad False, where training detaches the state). Fills
        self.grads. A chunk that fails (fast-split's worker gone) leaves the generator as it was before its masks, so
        that a run saved at the minibatch before resumes with the same ones."""
        drawn_from = None
        if masks is None and self.dropout > 0:
            drawn_from = self.dropout_rng.bit_generator.state
            masks = self.dropout_masks(*X.shape)
        try:
            return self.engine.loss_and_grad(X, Y, state, dstate, masks, state_grad)
        except BaseException:
            if drawn_from is not None:
                self.dropout_rng.bit_generator.state = drawn_from
            raise

    def dropout_masks(self, T, B):
        """The next chunk's dropout masks (L, T, B, nh) from the model's generator."""
        return dropout_masks(self.dropout_rng, self.dropout, self.num_layers, T, B, self.num_hiddens, self.xp,
                             self.dtype)

    def update(self, optimizer, lr, theta):
        """Global-norm clipping at theta (None: none; the rule: engines.clipping_threshold), then the
        optimiser's update (an optimizers.Optimizer made for this model), over the flat buffers. Returns the
        gradient norm before clipping (a 0-d device array)."""
        clipping_threshold(theta)                       # a theta that makes no sense stops here, in every engine
        return self.engine.update(optimizer, lr, theta)

    def clip_and_sgd(self, lr, theta):
        """The book's update: clipping, then plain SGD."""
        if self.sgd is None:
            self.sgd = Optimizer("sgd", self)
        return self.update(self.sgd, lr, theta)

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
        return torch_names(self.num_layers, self.embedding_dim)

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


def model_from_config(config, vocab_size, device="cpu", batch_size=None, num_steps=None):
    """The one way a model is built from a run's config (the command line, the examples, checkpoints): the
    keys of MODEL_DEFAULTS, each defaulting to its value there. Fresh weights, drawn from the config's seed.
    With batch_size and num_steps, the memory that training will take is checked first, before anything
    is allocated: a model that cannot fit is one line saying what it would need."""
    c = config_of(config)
    if batch_size is not None and c["cell"] in CELLS:
        check_memory(training_bytes(c, vocab_size, batch_size, num_steps, device), device,
                     f"training a {c['layers']}-layer {c['cell']} of {c['hidden']} hidden units over {vocab_size} "
                     f"tokens (batch {batch_size}, {num_steps} steps)")
    return RNNLM(vocab_size, c["hidden"], c["layers"], c["cell"], nonlinearity=c["nonlinearity"], device=device,
                 dtype=c["dtype"], init=c["init"], seed=c["seed"], engine=c["engine"], embedding_dim=c["embedding"],
                 dropout=c["dropout"])


# ----------------------------------------------------------------------------------------------
# Shapes and sizes, known before anything is allocated
# ----------------------------------------------------------------------------------------------

def parameter_shapes(cell, vocab_size, nh, layers, embedding_dim=None):
    """Our name -> shape of every parameter, in the order of the flat buffer."""
    V, G = vocab_size, CELLS[cell].GATES
    shapes = OrderedDict()
    if embedding_dim:
        shapes["E"] = (V, embedding_dim)                            # learnable embedding (embedding.py)
    for k in range(layers):
        ni = (embedding_dim or V) if k == 0 else nh
        shapes[f"l{k}.W_xh"] = (ni, G * nh)
        shapes[f"l{k}.W_hh"] = (nh, G * nh)
        shapes[f"l{k}.b_xh"] = (G * nh,)
        shapes[f"l{k}.b_hh"] = (G * nh,)
    shapes["W_hq"] = (nh, V)
    shapes["b_q"] = (V,)
    return shapes


def torch_names(layers, embedding_dim=None):
    """PyTorch key -> (our name, transposed?)."""
    names = OrderedDict()
    if embedding_dim:
        names["embedding.weight"] = ("E", False)
    for k in range(layers):
        names[f"rnn.weight_ih_l{k}"] = (f"l{k}.W_xh", True)
        names[f"rnn.weight_hh_l{k}"] = (f"l{k}.W_hh", True)
        names[f"rnn.bias_ih_l{k}"] = (f"l{k}.b_xh", False)
        names[f"rnn.bias_hh_l{k}"] = (f"l{k}.b_hh", False)
    names["fc.weight"] = ("W_hq", True)
    names["fc.bias"] = ("b_q", False)
    return names


def config_of(config):
    """A run's config with every key of MODEL_DEFAULTS (a missing one takes its default)."""
    return {**MODEL_DEFAULTS, **{k: v for k, v in config.items() if k in MODEL_DEFAULTS}}


def state_dict_shapes(config, vocab_size):
    """PyTorch key -> shape of the state_dict a model of this config has: what a checkpoint's arrays are
    checked against before the model is built."""
    c = config_of(config)
    if c["cell"] not in CELLS:
        raise ConfigError(f"unknown cell {c['cell']!r}; choose one of {', '.join(CELLS)}")
    shapes = parameter_shapes(c["cell"], vocab_size, c["hidden"], c["layers"], c["embedding"])
    return {key: shapes[ours][::-1] if transposed else shapes[ours]
            for key, (ours, transposed) in torch_names(c["layers"], c["embedding"]).items()}


def training_bytes(config, vocab_size, batch_size, num_steps, device="cpu"):
    """About how much memory training this model takes: parameters and gradients, and the fast engine's
    workspaces for two chunk shapes (training and validation: every step's gates, states and gradients); on the
    CPU with MKL, also each layer's W_hh and W_hh^T in MKL's packed form (engines/mkl.py, PackedB); with the
    fast-split engine, also its worker's gradients."""
    c = config_of(config)
    cell, nh, B, T = CELLS[c["cell"]], c["hidden"], batch_size, num_steps
    itemsize = np.dtype(c["dtype"]).itemsize
    parameters = sum(math.prod(s) for s in parameter_shapes(c["cell"], vocab_size, nh, c["layers"],
                                                            c["embedding"]).values())
    shapes = step_shapes(cell, B, nh)
    per_layer = (2 * T * math.prod(shapes["Ax"]) + math.prod(shapes["Ah"])               # Ax, dAx (dAh)
                 + (T + 1) * len(cell.STATE) * B * nh
                 + T * sum(math.prod(shapes[name]) for name in cell.SAVED))
    per_chunk = c["layers"] * per_layer + T * B * (vocab_size + 1 + 2 * nh + 2 * (c["embedding"] or 0))
    packed = 0                                   # MKL's packed W_hh, W_hh^T: the training workspace's (engines/fast.py)
    # fast-split (engines/split.py): the worker's gradients in a shared buffer of their own; its half of each
    # workspace and the half here take about what one whole workspace takes, and each process packs for its half.
    split = c["engine"] == "fast-split"
    if device == "cpu" and c["engine"] in ("fast", "fast-split") and mkl.chosen():
        G_nh, rows = cell.GATES * nh, B - B // 2 if split else B
        packed = (2 if split else 1) * c["layers"] * (mkl.packed_bytes(rows, nh, G_nh, c["dtype"])
                                                      + mkl.packed_bytes(rows, G_nh, nh, c["dtype"]))
    return itemsize * ((3 if split else 2) * parameters + 2 * per_chunk) + packed
