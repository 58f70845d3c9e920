"""scratchrnn: tanh RNN, GRU and LSTM language models with hand-written BPTT, on NumPy, Numba and CUDA."""
from .data import SeqDataLoader, Vocab, load_corpus
from .errors import ScratchRNNError
from .model import RNNLM
from .train import predict, train_epoch

__version__ = "0.1.0"
__all__ = ["RNNLM", "SeqDataLoader", "Vocab", "load_corpus", "predict", "train_epoch", "ScratchRNNError"]
