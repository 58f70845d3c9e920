"""Exercise: hyperparameters. Hidden size, steps per chunk (how far BPTT looks back) and learning rate,
each varied around the book's deep-LSTM setting while the others stay fixed, same number of epochs.

    python examples/exercises/hyperparameters.py [--epochs 40]
"""
from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import positive_int
    from scratchrnn.data import load_corpus
    from scratchrnn.experiments import parser, run_exercise, table, train_run

args_p = parser(__doc__)
args_p.add_argument("--epochs", type=positive_int, default=40)


def main(args):
    epochs = 2 if args.quick else args.epochs
    base = dict(hidden=32 if args.quick else 256, num_steps=35, lr=2.0)
    sweep = {"hidden": (16, 32) if args.quick else (64, 128, 256, 512), "num_steps": (10, 35, 70), "lr": (0.5, 1.0, 2.0, 4.0)}
    data = load_corpus()
    rows = []
    for name, values in sweep.items():
        for value in values:
            config = dict(base, **{name: value})
            run = train_run("lstm", 1, config["hidden"], lr=config["lr"], num_steps=config["num_steps"], epochs=epochs,
                            val_fraction=0.1, data=data)
            rows.append([name, value, f"{run.model.num_parameters():,}", f"{run.ppl:.2f}", f"{run.val_ppl:.2f}",
                         f"{run.tokens_per_s:,.0f}", f"{run.seconds:.1f}"])
    table(["varied", "value", "parameters", "train ppl", "validation ppl", "tokens/s", "seconds"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
