"""d2l.ai "Recurrent Neural Networks from Scratch": one tanh RNN layer, 512 hidden units, lr 1,
500 epochs, sequential partitioning, clipping at 1. The book reports perplexity 1.0.

The weights start from PyTorch's default initialisation, as every model in scratchrnn does; the
book's scratch model draws them from N(0, 0.01^2) instead (`--init normal`). README ("Results") shows
both over many seeds: from either one, a run can end on a plateau near 1.17 instead of 1.03, in
PyTorch too (examples/late_plateaus.py shows why); from the book's it happened more often.

    python examples/train_rnn_scratch.py
    python examples/train_rnn_scratch.py --init normal     # the book's initialisation
    python examples/train_rnn_scratch.py --random-iter     # the book's second run
"""
from scratchrnn.launch import book_example      # book.main: the book's training, in scratchrnn/book.py

if __name__ == "__main__":
    book_example(__doc__, dict(cell="rnn", layers=1, hidden=512, lr=1.0, init="pytorch"))
