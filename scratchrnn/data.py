"""The book's text pipeline (d2l.ai, "Text Preprocessing" and "Language Models and the Dataset").

    text --preprocess--> lines of lower-case letters and spaces
         --tokenize----> character (or word) tokens
         --Vocab-------> integer ids, most frequent first, '<unk>' = 0
         --iterators---> minibatches X, Y of shape (batch_size, num_steps), Y = X shifted by one

The Time Machine ships inside the package (scratchrnn/data/timemachine.txt); nothing is downloaded.
"""
import collections
import re
from pathlib import Path

import numpy as np

from .errors import DataError

TIME_MACHINE = Path(__file__).parent / "data" / "timemachine.txt"


# ----------------------------------------------------------------------------------------------
# Reading and preprocessing
# ----------------------------------------------------------------------------------------------

def read_text(path):
    """Read a UTF-8 text file, refusing what is missing, empty, binary or not UTF-8 (one-line errors)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"corpus {str(path)!r} does not exist")
    if not path.is_file():
        raise DataError(f"corpus {str(path)!r} is not a file")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"corpus {str(path)!r} cannot be read: {e.strerror}") from None
    if not raw.strip():
        raise DataError(f"corpus {str(path)!r} is empty")
    if b"\x00" in raw:
        raise DataError(f"corpus {str(path)!r} looks binary (it contains NUL bytes), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"corpus {str(path)!r} is not UTF-8 text (bad byte at offset {e.start})") from None


def preprocess_book(text):
    """The book's preprocessing: every run of non-letters becomes one space; lower case; one line each."""
    return [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]


def preprocess_wide(text):
    """A wider character set (an exercise): keep every printable character and the case; one line each."""
    return [" ".join(line.split()) for line in text.splitlines()]


def tokenize(lines, token="char"):
    """Split each line into word or character tokens, as the book's `tokenize`."""
    if token == "char":
        return [list(line) for line in lines]
    if token == "word":
        return [line.split() for line in lines]
    raise DataError(f"unknown token type {token!r}; choose 'char' or 'word'")


class Vocab:
    """Tokens <-> ids. Ids follow frequency (most frequent first); '<unk>' is id 0 and catches the rest.

    Ties in frequency keep the order of first appearance, as `collections.Counter` does in the book.
    """

    def __init__(self, tokens=(), min_freq=0, reserved_tokens=(), idx_to_token=None, token="char"):
        if idx_to_token is not None:           # rebuilt from a checkpoint
            self.idx_to_token = list(idx_to_token)
        else:
            if tokens and isinstance(tokens[0], list):
                tokens = [tok for line in tokens for tok in line]
            counter = collections.Counter(tokens)
            self.token_freqs = sorted(counter.items(), key=lambda x: x[1], reverse=True)
            self.idx_to_token = ["<unk>"] + list(reserved_tokens)
            for tok, freq in self.token_freqs:
                if freq < min_freq:
                    break
                if tok not in self.idx_to_token:
                    self.idx_to_token.append(tok)
        self.token_to_idx = {tok: idx for idx, tok in enumerate(self.idx_to_token)}
        self.sep = "" if token == "char" else " "                         # how generated tokens are joined

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        if not isinstance(tokens, (list, tuple)):
            return self.token_to_idx.get(tokens, self.unk)
        return [self[tok] for tok in tokens]

    def to_tokens(self, indices):
        if hasattr(indices, "__len__"):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        return 0


def load_corpus(paths=None, max_tokens=10000, token="char", charset="book"):
    """The book's `load_corpus_time_machine`, for any UTF-8 text files.

    paths: a path or a list of paths (None: the Time Machine). The corpus is the flat list of token ids,
    cut to `max_tokens` (the book's 10,000 characters; -1 or None keeps the whole text).
    Returns (corpus as an int64 array, vocab).
    """
    if paths is None:
        paths = [TIME_MACHINE]
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    preprocess = {"book": preprocess_book, "wide": preprocess_wide}[charset]
    lines = []
    for p in paths:
        lines += preprocess(read_text(p))
    tokens = tokenize(lines, token)
    flat = [tok for line in tokens for tok in line]
    if not flat:
        raise DataError(f"corpus {', '.join(map(str, paths))} has no tokens left after preprocessing")
    vocab = Vocab(flat, token=token)
    corpus = np.array([vocab[tok] for tok in flat], dtype=np.int64)
    if max_tokens is not None and max_tokens > 0:
        corpus = corpus[:max_tokens]
    return corpus, vocab


# ----------------------------------------------------------------------------------------------
# Minibatches: the book's two ways to cut a long sequence into (batch_size, num_steps) pieces
# ----------------------------------------------------------------------------------------------

def seq_data_iter_random(corpus, batch_size, num_steps, rng):
    """Random sampling: subsequences start at random places; neighbouring minibatches are unrelated,
    so the hidden state is re-initialised for every minibatch."""
    corpus = corpus[rng.integers(0, num_steps):]          # random offset in [0, num_steps - 1]
    num_subseqs = (len(corpus) - 1) // num_steps
    initial_indices = np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(initial_indices)
    num_batches = num_subseqs // batch_size
    for i in range(0, batch_size * num_batches, batch_size):
        starts = initial_indices[i:i + batch_size]
        X = np.stack([corpus[j:j + num_steps] for j in starts])          # (B, T)
        Y = np.stack([corpus[j + 1:j + 1 + num_steps] for j in starts])  # (B, T)
        yield X, Y


def seq_data_iter_sequential(corpus, batch_size, num_steps, rng):
    """Sequential partitioning: row b of minibatch i+1 continues row b of minibatch i, so the hidden
    state is carried across minibatches (and detached: truncated BPTT)."""
    offset = int(rng.integers(0, num_steps + 1))          # random offset in [0, num_steps]
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    Xs = corpus[offset:offset + num_tokens].reshape(batch_size, -1)
    Ys = corpus[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    num_batches = Xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]


class SeqDataLoader:
    """An iterable over minibatches, re-cut at random every epoch from its own seeded generator."""

    def __init__(self, corpus, batch_size=32, num_steps=35, use_random_iter=False, seed=0):
        if batch_size < 1 or num_steps < 1:
            raise DataError(f"batch size and steps must be positive (got {batch_size}, {num_steps})")
        self.corpus = np.asarray(corpus, dtype=np.int64)
        self.batch_size, self.num_steps = batch_size, num_steps
        self.use_random_iter = use_random_iter
        self.rng = np.random.default_rng(seed)
        need = batch_size * num_steps + num_steps + 1
        if len(self.corpus) < need:
            raise DataError(
                f"corpus has {len(self.corpus)} tokens, too short for one minibatch of {batch_size} x "
                f"{num_steps} (needs at least {need}); use a longer text or smaller --batch-size/--num-steps")

    def __iter__(self):
        make = seq_data_iter_random if self.use_random_iter else seq_data_iter_sequential
        return make(self.corpus, self.batch_size, self.num_steps, self.rng)
