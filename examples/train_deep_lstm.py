"""d2l.ai "Deep Recurrent Neural Networks": a 2-layer LSTM, 256 hidden units, lr 2, 500 epochs,
on the first 10,000 characters of The Time Machine. The book reports perplexity 1.0.

    python examples/train_deep_lstm.py                 # GPU if CuPy finds one, else CPU
    python examples/train_deep_lstm.py --device gpu    # the headline command
"""
from scratchrnn.launch import book_example      # book.main: the book's training, in scratchrnn/book.py

if __name__ == "__main__":
    book_example(__doc__, dict(cell="lstm", layers=2, hidden=256, lr=2.0, init="pytorch"))
