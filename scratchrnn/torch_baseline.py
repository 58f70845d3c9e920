"""The same training step in PyTorch, for comparisons only (benchmarks/, the GPU self-test).
torch is never a dependency of scratchrnn: the caller imports it and passes the module in.

Which code PyTorch runs for that step depends on the cell. On the CPU its nn.LSTM goes to oneDNN's fused RNN
primitive (the ATen operators aten::mkldnn_rnn_layer and aten::mkldnn_rnn_layer_backward: one call runs a whole
layer's time loop, forward or backward, in oneDNN's own compiled code), while nn.GRU and nn.RNN run ATen's per-step
path (a matrix product and a few elementwise operators per time step, as the reference engine does). top_ops shows
it, from PyTorch's own profiler; fused_rnn=False turns oneDNN off for the step (torch.backends.mkldnn.flags), so
that the LSTM takes the per-step path too.
"""
import os
import sys
import warnings
from collections import defaultdict
from contextlib import contextmanager

from .cells import CELLS
from .model import INITS

FUSED_RNN_OPS = ("aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward")   # oneDNN's RNN primitive in ATen


class TorchStep:
    """torch.nn.{RNN,GRU,LSTM} + nn.Linear, one-hot input, mean cross-entropy, global-norm clipping,
    SGD (or Adam), dropout between layers and before nn.Linear (none by default), state carried and
    detached between calls: the work of one scratchrnn training step."""

    def __init__(self, torch, cell, vocab_size, num_hiddens, num_layers, lr=1.0, theta=1.0, device="cpu",
                 nonlinearity="tanh", init="pytorch", optimizer="sgd", dropout=0.0, fused_rnn=True):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        kind = getattr(torch.nn, CELLS[cell].TORCH_MODULE)
        self.torch, self.V, self.H, self.theta = torch, vocab_size, num_hiddens, theta
        extra = {"nonlinearity": nonlinearity} if len(CELLS[cell].NONLINEARITIES) > 1 else {}
        # dropout where ours puts it (scratchrnn/dropout.py): between layers (nn.LSTM's) and before fc
        self.net = kind(vocab_size, num_hiddens, num_layers, dropout=dropout if num_layers > 1 else 0.0,
                        **extra).to(device)
        self.drop = torch.nn.Dropout(dropout)
        self.fc = torch.nn.Linear(num_hiddens, vocab_size).to(device)
        self.params = list(self.net.parameters()) + list(self.fc.parameters())
        if init == "normal":                              # the book's scheme: N(0, 0.01^2) weights, zero biases
            with torch.no_grad():
                for module in (self.net, self.fc):
                    for name, p in module.named_parameters():
                        if name.startswith("weight"):
                            p.normal_(0.0, 0.01)
                        else:
                            p.zero_()
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be sgd or adam, got {optimizer!r}")
        self.opt = (torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam)(self.params, lr=lr)
        self.state = None
        self.fused_rnn = fused_rnn          # False: oneDNN off during the step (the per-step path for every cell)

    def state_dict(self):
        """The weights as NumPy arrays under scratchrnn's (PyTorch's) names: RNNLM.load_state_dict takes them."""
        d = {"rnn." + k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        d.update({"fc." + k: v.detach().cpu().numpy() for k, v in self.fc.state_dict().items()})
        return d

    def __call__(self, X, y):
        """X: (T, B) int64 tensor of token ids; y: (T*B,) targets, time-major. Returns the loss tensor."""
        if self.fused_rnn:
            return self.step(X, y)
        with warnings.catch_warnings():     # the flags also set oneDNN's TF32 mode, and warn that no Intel GPU has it
            warnings.simplefilter("ignore", UserWarning)
            with self.torch.backends.mkldnn.flags(enabled=False):
                return self.step(X, y)

    def top_ops(self, X, y, steps=2, count=3):
        """PyTorch's own account of its step (torch.profiler over `steps` steps): the `count` ATen operators with the
        most self CPU time, as (name, share of all the step's self CPU time, calls per step), the largest first. It
        trains: the model takes steps + 1 more steps (the first a warm-up)."""
        from torch.profiler import ProfilerActivity, profile
        self(X, y)                                                      # warm-up, outside the profile
        with quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                self(X, y)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        seconds, calls = defaultdict(float), defaultdict(int)
        for e in events:
            if e.key.startswith("aten::"):
                seconds[e.key] += e.self_cpu_time_total
                calls[e.key] += e.count
        top = sorted(seconds, key=seconds.get, reverse=True)[:count]
        return [(name, seconds[name] / total, calls[name] / steps) for name in top]

    def step(self, X, y):
        torch = self.torch
        if self.state is not None:                                      # truncated BPTT: detach
            self.state = tuple(s.detach() for s in self.state) if isinstance(self.state, tuple) \
                else self.state.detach()
        out, self.state = self.net(torch.nn.functional.one_hot(X, self.V).float(), self.state)
        loss = torch.nn.functional.cross_entropy(self.fc(self.drop(out).reshape(-1, self.H)), y)
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.theta)
        self.opt.step()
        return loss


@contextmanager
def quiet_stderr():
    """File descriptor 2 pointed at /dev/null for the block: PyTorch's profiler (its Kineto library) writes a line there
    when it starts and one when it stops, and no setting turns them off."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
