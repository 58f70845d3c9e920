"""scratchrnn: tanh RNN, GRU and LSTM language models with hand-written BPTT, on NumPy, Numba and CUDA."""
import importlib

__version__ = "0.1.0"
__all__ = ["RNNLM", "SeqDataLoader", "Vocab", "load_corpus", "predict", "train_epoch", "ScratchRNNError"]
# Where each name of __all__ lives, imported the first time it is asked for (`from scratchrnn import RNNLM`):
# `import scratchrnn` loads neither NumPy nor Numba, so the command can catch a Ctrl-C while it loads them (__main__).
EXPORTS = {"RNNLM": "model", "SeqDataLoader": "data", "Vocab": "data", "load_corpus": "data", "predict": "train",
           "train_epoch": "train", "ScratchRNNError": "errors"}


def __getattr__(name):
    if name in EXPORTS:
        return getattr(importlib.import_module(f".{EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
