"""Loading a text of 1, 10 and 100 MB: read, normalise (NFC, line breaks), apply the charset, count the
vocabulary, turn the text into ids. Time and peak memory, for every charset.

    python benchmarks/bench_load.py [--sizes 1 10 100] [--baseline-up-to 10]

The texts are generated: words of several scripts (English with capitals and punctuation, Vietnamese,
Turkish, Japanese), line breaks, tabs and runs of spaces, in decomposed Unicode (NFD) in part, so that
normalisation has work to do. Each load runs in a fresh process whose peak resident memory is read from
the operating system (ru_maxrss), beside that of a process that only imports scratchrnn (the baseline
memory). The baseline is scratchrnn's loader before 2026-11-25 (the book's way: the book's preprocessing,
then a Python list of one-character strings counted by collections.Counter), measured in the same run, with
the book charset, on the sizes up to --baseline-up-to MB. Then, for an ASCII text of each size (where a character
is a byte: the most memory per byte of text), the peak per byte of the file, character and word tokens, against
what the check before reading a text assumes (data.LOAD_BYTES_PER_BYTE).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from scratchrnn.backend import cpu_model
from scratchrnn.cmdline import OneLineParser, positive_int
from scratchrnn.data import CHARSETS, LOAD_BYTES_PER_BYTE, TIME_MACHINE, TOKENS, read_text

WORDS = ("the", "Time", "Traveller", "said,", "machine.", "thời", "gian", "đi", "çocuk", "ğüzel", "ışık",
         "şey",
         "時間", "旅行者", "は", "言った。", "—", "'quite", "so'", "1895", "(H.", "G.", "Wells)")
CHILD = r"""
import resource, sys, time
start = time.perf_counter()
if sys.argv[1] != "none":
    from scratchrnn.data import load_corpus
    corpus, vocab = load_corpus(sys.argv[2], max_tokens=-1, charset=sys.argv[1], token=sys.argv[3])
    n, v = len(corpus), len(vocab)
else:
    import scratchrnn.data
    n = v = 0
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, n, v)
"""
BOOK_WAY = r"""
import collections, re, resource, sys, time
import numpy as np
start = time.perf_counter()
text = open(sys.argv[1], encoding="utf-8").read()
lines = [re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.splitlines()]
tokens = [list(line) for line in lines]
flat = [tok for line in tokens for tok in line]
counter = collections.Counter(flat)
idx = {tok: i + 1 for i, (tok, _) in enumerate(sorted(counter.items(), key=lambda x: x[1], reverse=True))}
corpus = np.array([idx[tok] for tok in flat], dtype=np.int64)
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, len(corpus), len(idx) + 1)
"""


def make_text(path, megabytes, seed=0):
    """About `megabytes` MB of UTF-8 text; a block of 1 MB drawn at random, repeated with a line of its
    own number between repeats, a quarter of the blocks in NFD."""
    rng = np.random.default_rng(seed)
    pieces, size = [], 0
    while size < 2 ** 20:
        word = WORDS[rng.integers(len(WORDS))]
        gap = ("\n" if rng.random() < 0.08 else "\t" if rng.random() < 0.02 else "   " if rng.random() < 0.02
               else " ")
        pieces.append(word + gap)
        size += len((word + gap).encode())
    block = "".join(pieces)
    decomposed = unicodedata.normalize("NFD", block)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(megabytes):
            f.write(f"{i}\n")
            f.write(decomposed if i % 4 == 3 else block)
    return path


def make_ascii_text(path, megabytes, seed=0):
    """About `megabytes` MB of the Time Machine's words drawn at random, in lines of 12: ASCII, where every
    character is a byte, the most memory per byte of text."""
    words = np.array(read_text(TIME_MACHINE).split())
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="ascii") as f:
        for _ in range(megabytes):
            f.write("\n".join(" ".join(line) for line in words[rng.integers(0, len(words), (16384, 12))]) + "\n")
    return path


def run(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, check=True)
    seconds, rss, n, v = out.stdout.split()
    return float(seconds), int(rss), int(n), int(v)


def main():
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[1, 10, 100], metavar="MB")
    p.add_argument("--baseline-up-to", type=int, default=10, metavar="MB",
                   help="time the old loader on the sizes up to this many MB (0: never; at 100 MB it needs 4 GB)")
    args = p.parse_args()
    print(f"# scratchrnn text loading, {cpu_model()}, {os.cpu_count()} cores, numpy {np.__version__}")
    _, base_rss, _, _ = run(CHILD, "none", "-", "-")
    print(f"# a process that only imports scratchrnn: {base_rss / 2**20:.0f} MiB resident\n")
    print("| text | charset | tokens | vocabulary | seconds | peak memory | MB/s | old loader: seconds, peak "
          "| speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.sizes:
            path = make_text(Path(tmp) / f"text_{mb}.txt", mb)
            size = path.stat().st_size / 2 ** 20
            book = run(BOOK_WAY, path) if mb <= args.baseline_up_to else None
            for charset in CHARSETS:
                seconds, rss, n, v = run(CHILD, charset, path, "char")
                row = (f"| {size:.0f} MB | {charset} | {n:,} | {v} | {seconds:.2f} | {rss / 2**20:,.0f} MiB "
                       f"| {size / seconds:.0f} |")
                if book and charset == "book":
                    row += f" {book[0]:.2f} s, {book[1] / 2**20:,.0f} MiB | {book[0] / seconds:.1f}x |"
                else:
                    row += " - | - |"
                print(row, flush=True)
        print(f"\nPeak memory per byte of an ASCII text, above the {base_rss / 2**20:.0f} MiB of the import (the check "
              f"before reading refuses a text of more than the available memory over data.LOAD_BYTES_PER_BYTE: "
              f"{LOAD_BYTES_PER_BYTE}):\n")
        print("| text | tokens | peak memory | bytes per byte | within the check's |")
        print("|---|---|---|---|---|")
        for mb in args.sizes:
            path = make_ascii_text(Path(tmp) / f"ascii_{mb}.txt", mb)
            size = path.stat().st_size
            for token in TOKENS:
                _, rss, _, _ = run(CHILD, "raw", path, token)
                per_byte = (rss - base_rss) / size
                within = ("- (under 10 MB the loader's fixed costs, a few MiB, weigh more than the text)"
                          if size < 10 * 2**20 else "yes" if per_byte <= LOAD_BYTES_PER_BYTE[token] else "NO")
                print(f"| {size / 2**20:.0f} MB | {token} | {rss / 2**20:,.0f} MiB | {per_byte:.1f} | {within} |",
                      flush=True)


if __name__ == "__main__":
    main()
