"""Exercise: more than one book. How low does validation perplexity go as books are added, and what
does mixing authors do?

The validation text is fixed: the last 10% of the first book. Row k trains on the rest of the first
book plus books 2..k (same number of epochs). Books by the same author usually help; other authors
help less, or cost a little on the first book's style.

    python examples/exercises/more_books.py --corpus wells1.txt --corpus wells2.txt --corpus austen.txt

Without --corpus only the Time Machine is at hand: its parts then stand in for "books" (printed as
such), which shows the mechanics but not the effect of other authors.
"""
from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    import numpy as np
    from scratchrnn.cmdline import CorpusPaths, positive_int, user_path
    from scratchrnn.data import TIME_MACHINE, Vocab, preprocess_book, read_text, tokenize
    from scratchrnn.experiments import parser, run_exercise, table, train_run

args_p = parser(__doc__)
args_p.add_argument("--corpus", action=CorpusPaths, nargs="+", type=user_path, default=None)
args_p.add_argument("--epochs", type=positive_int, default=30)


def main(args):
    epochs, hidden = (2, 32) if args.quick else (args.epochs, 256)
    if args.corpus:
        texts = {p: read_text(p) for p in args.corpus}
    else:
        text = read_text(TIME_MACHINE)
        quarter = len(text) // 4
        texts = {f"Time Machine part {i + 1} (stand-in)": text[i * quarter:(i + 1) * quarter] for i in range(4)}
        if args.quick:
            texts = {k: v[:20000] for k, v in list(texts.items())[:2]}
    tokens = {name: [t for line in tokenize(preprocess_book(text)) for t in line] for name, text in texts.items()}
    vocab = Vocab([t for toks in tokens.values() for t in toks])
    ids = {name: np.array(vocab[toks], dtype=np.int64) for name, toks in tokens.items()}
    names = list(ids)
    first = ids[names[0]]
    n_val = len(first) // 10
    val = first[-n_val:]
    rows = []
    for k in range(1, len(names) + 1):
        train = np.concatenate([first[:-n_val]] + [ids[n] for n in names[1:k]])
        run = train_run("gru", 1, hidden, lr=1.0, epochs=epochs, data=(train, vocab), val=val)
        rows.append([" + ".join(str(n) for n in names[:k]), f"{len(train):,}", f"{run.ppl:.2f}", f"{run.val_ppl:.2f}"])
    table(["books", "training tokens", "train ppl", f"validation ppl (tail of {names[0]})"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
