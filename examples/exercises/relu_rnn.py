"""Exercise: ReLU instead of tanh in the RNN.

tanh squashes the state into (-1, 1) and its derivative is at most 1; ReLU lets the state and the
gradient grow without bound, so training leans on clipping much harder (or diverges).

    python examples/exercises/relu_rnn.py [--epochs 100]
"""
from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import positive_int
    from scratchrnn.data import load_corpus
    from scratchrnn.experiments import at, out_dir, parser, plot_curves, run_exercise, table, train_run

args_p = parser(__doc__)
args_p.add_argument("--epochs", type=positive_int, default=100)


def main(args):
    epochs, hidden = (4, 32) if args.quick else (args.epochs, 256)
    data = load_corpus()
    rows, curves = [], {}
    for nonlinearity in ("tanh", "relu"):
        for lr in (1.0, 0.2):
            run = train_run("rnn", 1, hidden, lr=lr, epochs=epochs, nonlinearity=nonlinearity, init="normal", data=data)
            label = f"{nonlinearity}, lr {lr:g}"
            curves[label] = run.curve
            clipped = sum(n > 1 for n in run.grad_norms) / max(1, len(run.grad_norms))
            rows.append([label, at(run.curve, min(10, epochs)), at(run.curve, epochs), f"{max(run.grad_norms):.3g}",
                         f"{clipped:.0%}", run.diverged_at or "-"])
    table(["RNN", f"ppl @{min(10, epochs)}", f"ppl @{epochs}", "largest grad norm", "steps clipped", "diverged in epoch"],
          rows)
    plot_curves(out_dir(args) / "relu_rnn.png", curves, "tanh vs ReLU RNN (clipping at theta = 1)")


if __name__ == "__main__":
    run_exercise(main, args_p)
