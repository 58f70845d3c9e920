"""Exercise: another book. Any UTF-8 text via --corpus, with the book's preprocessing (letters only,
lower case: 28 tokens) or a wider character set (every character kept, case and punctuation too).

    python examples/exercises/another_book.py --corpus mybook.txt [--epochs 60]
    python examples/exercises/another_book.py          # the whole Time Machine

A wider character set means a larger vocabulary and a harder prediction task; perplexities of the two
are not comparable with each other (different vocabularies), only within a column of runs.
"""
from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import CorpusPaths, positive_int, user_path
    from scratchrnn.data import load_corpus
    from scratchrnn.experiments import parser, run_exercise, table, train_run

args_p = parser(__doc__)
args_p.add_argument("--corpus", action=CorpusPaths, nargs="+", type=user_path, default=None)
args_p.add_argument("--epochs", type=positive_int, default=60)
args_p.add_argument("--max-tokens", type=positive_int, default=50000)


def main(args):
    epochs, hidden, max_tokens = (2, 32, 5000) if args.quick else (args.epochs, 256, args.max_tokens)
    rows = []
    for charset in ("book", "wide"):
        corpus, vocab = load_corpus(args.corpus, max_tokens=max_tokens, charset=charset)
        run = train_run("gru", 1, hidden, lr=1.0, epochs=epochs, val_fraction=0.1, data=(corpus, vocab))
        sample_prefix = "".join(vocab.to_tokens(corpus[:10]))
        from scratchrnn.train import predict
        rows.append([charset, len(vocab), f"{len(corpus):,}", f"{run.ppl:.2f}", f"{run.val_ppl:.2f}",
                     repr(predict(sample_prefix, 40, run.model, vocab))])
    table(["charset", "vocabulary", "tokens", "train ppl", "validation ppl", "greedy sample"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
