"""Exercise: no detaching. Backpropagate through the whole epoch instead of each chunk of 35 steps.

Truncated BPTT cuts the gradient at every chunk boundary (the state is detached) and updates after
each chunk. Full BPTT reads the epoch as one long sequence per row and backpropagates through all of
it: the memory of the forward pass grows with its length, and there is one update per epoch.
This measures both, in time and memory, and what happens to training.

    python examples/exercises/no_detaching.py [--epochs 60]
"""
import time
import tracemalloc

from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    import numpy as np
    from scratchrnn.cmdline import positive_int
    from scratchrnn.data import load_corpus, seq_data_iter_sequential
    from scratchrnn.experiments import out_dir, parser, plot_curves, run_exercise, table
    from scratchrnn.model import RNNLM
    from scratchrnn.train import detach

args_p = parser(__doc__)
args_p.add_argument("--epochs", type=positive_int, default=60)


def main(args):
    epochs, hidden, max_tokens = (3, 16, 3000) if args.quick else (args.epochs, 128, 10000)
    corpus, vocab = load_corpus(max_tokens=max_tokens)
    B, T = 32, 35


    def epoch_chunks(rng):
        return [(np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T))
                for X, Y in seq_data_iter_sequential(corpus, B, T, rng)]


    def train(mode):
        """Returns the perplexity curve, seconds per epoch (epochs 2.., untraced), peak traced memory
        (epoch 1: tracemalloc slows allocation, so it is kept out of the timing) and updates per epoch."""
        model = RNNLM(len(vocab), hidden, 1, "lstm", engine="reference", seed=0)
        rng = np.random.default_rng(0)
        curve, seconds, peak = [], 0.0, 0
        for epoch in range(epochs):
            chunks = epoch_chunks(rng)
            if mode == "full":                                    # one sequence of len(chunks) * T steps
                chunks = [(np.concatenate([X for X, _ in chunks]), np.concatenate([Y for _, Y in chunks]))]
            if epoch == 0:
                tracemalloc.start()
            start, state, total, n = time.perf_counter(), None, 0.0, 0
            for X, Y in chunks:
                state = model.begin_state(B) if state is None else detach(state)
                loss, state, _ = model.loss_and_grad(X, Y, state)
                model.clip_and_sgd(1.0, 1.0)
                total, n = total + float(loss) * X.size, n + X.size
            if epoch == 0:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            else:
                seconds += time.perf_counter() - start
            curve.append(float(np.exp(total / n)))
        return curve, seconds / max(1, epochs - 1), peak, len(chunks)


    rows, curves = [], {}
    for mode, label in (("truncated", f"truncated BPTT ({T} steps, detached)"), ("full", "full BPTT over the epoch")):
        curve, per_epoch, peak, updates = train(mode)
        curves[label] = curve
        rows.append([label, updates, f"{per_epoch:.2f}", f"{peak / 2**20:.1f}", f"{curve[0]:.2f}", f"{curve[-1]:.2f}"])
    table(["training", "updates per epoch", "seconds per epoch", "peak memory (MiB)", "ppl after 1 epoch",
           f"ppl after {epochs}"], rows)
    plot_curves(out_dir(args) / "no_detaching.png", curves, "LSTM: truncated vs full backpropagation through time")


if __name__ == "__main__":
    run_exercise(main, args_p)
