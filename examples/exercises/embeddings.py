"""Exercise: learnable embeddings instead of one-hot input.

1. One-hot times a weight matrix is a row lookup: the same numbers, without multiplying by zeros.
2. The Embedding layer's hand-written backward, checked by finite differences (float64).
3. Training with one-hot input and with embeddings of a few sizes.

    python examples/exercises/embeddings.py [--epochs 60]
"""
import time

from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    import numpy as np
    from scratchrnn.cmdline import positive_int
    from scratchrnn.data import load_corpus
    from scratchrnn.embedding import embedding_backward, embedding_forward
    from scratchrnn.experiments import parser, run_exercise, table, train_run
    from scratchrnn.gradcheck import check_model

args_p = parser(__doc__)
args_p.add_argument("--epochs", type=positive_int, default=60)


def main(args):
    epochs, hidden = (2, 32) if args.quick else (args.epochs, 256)

    rng = np.random.default_rng(0)
    V, D, N = 28, 1024, 1120
    W, X = rng.standard_normal((V, D)).astype(np.float32), rng.integers(0, V, N)
    one_hot = np.eye(V, dtype=np.float32)[X]
    timings = {}
    for name, f in (("one_hot @ W", lambda: one_hot @ W), ("W[X] (lookup)", lambda: embedding_forward(W, X))):
        f()
        start = time.perf_counter()
        for _ in range(50):
            f()
        timings[name] = (time.perf_counter() - start) / 50 * 1e6
    dEmb = rng.standard_normal((N, D)).astype(np.float32)
    table(["", "value"], [
        ["largest abs(one_hot @ W - W[X])", f"{np.abs(one_hot @ W - embedding_forward(W, X)).max():.1e}"],
        ["largest abs(one_hot.T @ dEmb - scatter-add of dEmb)",
         f"{np.abs(one_hot.T @ dEmb - embedding_backward(W, X, dEmb)).max():.1e}"],
        *[[f"time of {k} ({N} x {V} by {V} x {D})", f"{v:.0f} us"] for k, v in timings.items()]])

    rows = []
    for cell in ("rnn", "gru", "lstm"):
        errors = check_model(cell, 2, embedding_dim=4)
        rows.append([cell.upper(), f"{max(e['E'] for e in errors.values()):.1e}",
                     f"{max(max(e.values()) for e in errors.values()):.1e}"])
    table(["2-layer model with embedding", "rel. error of dE (finite differences)", "worst over all parameters"], rows)

    data = load_corpus()
    rows = []
    for dim in (None, 4, 8, 16, 32):
        run = train_run("gru", 1, hidden, lr=1.0, epochs=epochs, embedding_dim=dim, val_fraction=0.1, data=data)
        rows.append(["one-hot (28)" if dim is None else f"embedding {dim}", f"{run.model.num_parameters():,}",
                     f"{run.ppl:.2f}", f"{run.val_ppl:.2f}", f"{run.tokens_per_s:,.0f}"])
    table(["GRU input", "parameters", "train ppl", "validation ppl", "tokens/s"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
