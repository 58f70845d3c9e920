"""The same training step in PyTorch, for comparisons only (benchmarks/, the GPU self-test).
torch is never a dependency of scratchrnn: the caller imports it and passes the module in."""
from .cells import CELLS
from .model import INITS


class TorchStep:
    """torch.nn.{RNN,GRU,LSTM} + nn.Linear, one-hot input, mean cross-entropy, global-norm clipping,
    SGD (or Adam), dropout between layers and before nn.Linear (none by default), state carried and
    detached between calls: the work of one scratchrnn training step."""

    def __init__(self, torch, cell, vocab_size, num_hiddens, num_layers, lr=1.0, theta=1.0, device="cpu",
                 nonlinearity="tanh", init="pytorch", optimizer="sgd", dropout=0.0):
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

    def state_dict(self):
        """The weights as NumPy arrays under scratchrnn's (PyTorch's) names: RNNLM.load_state_dict takes them."""
        d = {"rnn." + k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
        d.update({"fc." + k: v.detach().cpu().numpy() for k, v in self.fc.state_dict().items()})
        return d

    def __call__(self, X, y):
        """X: (T, B) int64 tensor of token ids; y: (T*B,) targets, time-major. Returns the loss tensor."""
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
