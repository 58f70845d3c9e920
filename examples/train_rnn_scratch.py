"""d2l.ai "Recurrent Neural Networks from Scratch": one tanh RNN layer, 512 hidden units, lr 1,
500 epochs, the book's small-normal initialisation. The book reports perplexity 1.0.

    python examples/train_rnn_scratch.py
    python examples/train_rnn_scratch.py --random-iter     # the book's second run
"""
from scratchrnn.book import main

if __name__ == "__main__":
    main(__doc__, dict(cell="rnn", layers=1, hidden=512, lr=1.0, init="normal"))
