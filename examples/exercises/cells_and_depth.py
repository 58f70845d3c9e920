"""Exercise: RNN vs GRU vs LSTM, and depth 1 to 4, on the same budget.

Each configuration gets the same wall-clock budget (--seconds) on the same data; the table shows what
it reached: training and validation perplexity (the last 10% of the text is held out), speed and size.

    python examples/exercises/cells_and_depth.py [--seconds 15] [--hidden 128]
"""
from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import positive_float, positive_int
    from scratchrnn.data import load_corpus
    from scratchrnn.experiments import parser, run_exercise, table, train_run

args_p = parser(__doc__)
args_p.add_argument("--seconds", type=positive_float, default=15)
args_p.add_argument("--hidden", type=positive_int, default=128)


def main(args):
    seconds, hidden, depths = (0.3, 16, (1, 2)) if args.quick else (args.seconds, args.hidden, (1, 2, 3, 4))
    data = load_corpus()
    rows = []
    for cell, lr in (("rnn", 1.0), ("gru", 2.0), ("lstm", 2.0)):
        for layers in depths:
            run = train_run(cell, layers, hidden, lr=lr, epochs=10**6, seconds=seconds, val_fraction=0.1, data=data)
            rows.append([cell.upper(), layers, f"{run.model.num_parameters():,}", run.epochs, f"{run.ppl:.2f}",
                         f"{run.val_ppl:.2f}", f"{run.tokens_per_s:,.0f}"])
    table(["cell", "layers", "parameters", f"epochs in {seconds:g} s", "train ppl", "validation ppl", "tokens/s"], rows)


if __name__ == "__main__":
    run_exercise(main, args_p)
