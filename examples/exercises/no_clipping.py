"""Exercise: train the book's tanh RNN without gradient clipping.

Without clipping one large gradient can throw the weights far away: the perplexity jumps up, stalls,
or the loss becomes infinite. This trains the same model with clipping (theta = 1) and without, at the
book's learning rate and at a larger one, and shows when training breaks.

    python examples/exercises/no_clipping.py [--epochs 100]
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
    for lr in (1.0, 3.0):
        for theta in (1.0, None):
            run = train_run("rnn", 1, hidden, lr=lr, theta=theta, epochs=epochs, init="normal", data=data)
            label = f"lr {lr:g}, " + ("clipped at 1" if theta else "no clipping")
            curves[label] = run.curve
            big = sum(n > 1 for n in run.grad_norms)
            jumps = [e + 2 for e, (a, b) in enumerate(zip(run.curve, run.curve[1:])) if b > 1.5 * a]
            rows.append([label, at(run.curve, min(10, epochs)), at(run.curve, epochs // 2), at(run.curve, epochs),
                         f"{max(run.grad_norms):.3g}", f"{big / max(1, len(run.grad_norms)):.0%}",
                         ", ".join(map(str, jumps[:5])) or "-", run.diverged_at or "-"])
    table(["setting", f"ppl @{min(10, epochs)}", f"ppl @{epochs // 2}", f"ppl @{epochs}", "largest grad norm",
           "steps with norm > 1", "epochs where ppl jumps x1.5", "diverged in epoch"], rows)
    plot_curves(out_dir(args) / "no_clipping.png", curves, "tanh RNN, with and without gradient clipping")


if __name__ == "__main__":
    run_exercise(main, args_p)
