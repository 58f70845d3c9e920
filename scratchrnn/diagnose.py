"""See gradients vanish and explode through time: `scratchrnn diagnose`.

Trains a tanh RNN, a GRU and an LSTM of the same depth and width on the same data, recording
during every backward pass the norm of the gradient reaching each hidden state, ||dL/dH_t||, for
every layer and time step (model.trace_gradient_flow), and the global gradient norm before clipping.

Draws:
  gradient_flow.png   heat maps, time step x layer, one column per cell:
                      row 1: the training loss (a loss at every step), mean over the last epoch;
                      row 2: only the loss at the last step, backpropagated to every earlier step:
                             how much of a gradient survives k steps back (BPTT's product of Jacobians)
  grad_norm.png       the global gradient norm before clipping, for every training step, beside theta
"""
from pathlib import Path

import numpy as np

from . import output
from .cmdline import (OneLineParser, positive_float, positive_int, prepare_out_dir, pyplot, seed_int,
                      user_path, with_one_line_errors)
from .data import SeqDataLoader, load_corpus
from .engines.reference import ReferenceEngine
from .errors import ConfigError
from .model import MODEL_DEFAULTS, RNNLM
from .train import check_hyperparameters, train_epoch

CELLS = (("tanh RNN", "rnn"), ("GRU", "gru"), ("LSTM", "lstm"))


def last_step_gradient_flow(model, X, Y):
    """||dL_T/dH_t|| for every layer and step t, where L_T is the loss at the final time step only
    (the reference engine's backward, handed a dlogits that is zero but for the last step)."""
    model.trace_gradient_flow = True
    reference = ReferenceEngine(model)
    logits, _, cache = reference.forward_with_cache(X, model.begin_state(X.shape[1]))
    y = Y.reshape(-1)
    _, P = output.softmax_cross_entropy(logits, y)
    dlogits = output.softmax_cross_entropy_backward(P, y)
    T, B = X.shape
    dlogits[:(T - 1) * B] = 0                    # rows are time-major: keep only the last step's rows
    reference.backward(cache, dlogits)
    flow = model.gradient_flow
    model.trace_gradient_flow = False
    return flow


BOOK_TOKENS, ROWS = 10000, 32          # the book's text and minibatch rows each model trains on


def run(cells=CELLS, layers=2, hidden=128, epochs=60, lr=2.0, theta=1.0, batch_size=ROWS, num_steps=35,
        max_tokens=BOOK_TOKENS, seed=0, engine=MODEL_DEFAULTS["engine"], on_epoch=None):
    """Train each cell; return {label: dict(flow_train, flow_last, norms, ppl, params)}."""
    corpus, vocab = load_corpus(max_tokens=max_tokens)
    results = {}
    for label, cell in cells:
        model = RNNLM(len(vocab), hidden, layers, cell, seed=seed, engine=engine)
        loader = SeqDataLoader(corpus, batch_size, num_steps, seed=seed)
        model.trace_gradient_flow = True
        norms, flows = [], []

        def on_step(pos, grad_norm):
            norms.append(float(grad_norm))
            flows.append(model.gradient_flow.copy())

        for epoch in range(epochs):
            flows.clear()
            ppl, _ = train_epoch(model, loader, lr, theta, on_step=on_step)
            if on_epoch:
                on_epoch(label, epoch + 1, ppl)
        X, Y = next(iter(loader))
        flow_last = last_step_gradient_flow(model, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T))
        results[label] = dict(flow_train=np.mean(flows, axis=0), flow_last=flow_last, norms=np.array(norms),
                              ppl=ppl, params=model.num_parameters())
    return results


def summary_rows(results, theta):
    """One row per cell: what the pictures show, in numbers."""
    rows = []
    for label, r in results.items():
        last = r["flow_last"]
        survive = last[-1, 0] / last[-1, -1]         # top layer: from step T back to step 1
        depth = last[0, -1] / last[-1, -1]           # last step: from the top layer down to the bottom
        rows.append([label, f"{r['params']:,}", f"{r['ppl']:.2f}", f"{np.median(r['norms']):.3g}",
                     f"{np.mean(r['norms'] > theta):.0%}", f"{survive:.1e}", f"{depth:.1e}"])
    return ["cell", "parameters", "train perplexity", "median grad norm", "steps clipped",
            "last-step gradient reaching t=1 (vs t=T)", "reaching the bottom layer at T (vs top)"], rows


def draw(results, out, theta):
    plt = pyplot()
    from matplotlib.colors import LogNorm

    labels = list(results)
    fig, axes = plt.subplots(2, len(labels), figsize=(4.2 * len(labels), 6.0), squeeze=False, layout="constrained")
    for row, (key, title) in enumerate((("flow_train", "training loss (every step)"),
                                        ("flow_last", "loss at the last step only"))):
        values = np.concatenate([results[k][key].ravel() for k in labels])
        values = values[values > 0]
        norm = LogNorm(vmin=max(values.min(), values.max() * 1e-12), vmax=values.max())
        for col, label in enumerate(labels):
            ax = axes[row, col]
            flow = np.maximum(results[label][key], norm.vmin)
            L, T = flow.shape
            im = ax.imshow(flow, aspect="auto", origin="lower", norm=norm, cmap="viridis",
                           extent=(0.5, T + 0.5, 0.5, L + 0.5))
            ax.set_title(f"{label}: {title}", fontsize=9)
            ax.set_xlabel("time step t")
            ax.set_ylabel("layer")
            ax.set_yticks(range(1, L + 1))
        fig.colorbar(im, ax=axes[row, :].tolist(), label="||dL/dH_t||")
    fig.savefig(Path(out) / "gradient_flow.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for label in labels:
        ax.plot(results[label]["norms"], label=label, linewidth=0.8)
    ax.axhline(theta, color="black", linestyle="--", linewidth=0.8, label=f"theta = {theta:g}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm before clipping")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(out) / "grad_norm.png", dpi=100)
    plt.close(fig)


def format_table(header, rows):
    from tabulate import tabulate
    return tabulate(rows, headers=header, tablefmt="github")


def add_arguments(p):
    p.add_argument("--out", type=user_path, default="scratchrnn-diagnose", help="folder for the PNGs")
    p.add_argument("--layers", type=positive_int, default=2, help="layers of each of the three models")
    p.add_argument("--hidden", type=positive_int, default=128, help="hidden units of each layer")
    p.add_argument("--epochs", type=positive_int, default=60, help="epochs each model trains (SGD)")
    p.add_argument("--lr", type=positive_float, default=2.0, help="SGD's learning rate")
    p.add_argument("--theta", type=positive_float, default=1.0, help="gradient clipping threshold")
    p.add_argument("--num-steps", type=positive_int, default=35, help="time steps a gradient is followed back")
    p.add_argument("--seed", type=seed_int, default=0, help="seeds the weights and the minibatches")


def main(args):
    check_hyperparameters(args.lr, args.epochs, args.theta)
    if args.num_steps < 2:
        raise ConfigError(f"--num-steps must be at least 2 for a gradient to flow back (got {args.num_steps})")
    longest = SeqDataLoader.longest_steps(BOOK_TOKENS, ROWS)
    if args.num_steps > longest:
        raise ConfigError(f"--num-steps {args.num_steps} is longer than the book's first {BOOK_TOKENS:,} characters "
                          f"give in minibatches of {ROWS} rows: {longest} at the most")
    out = prepare_out_dir(args.out)
    results = run(layers=args.layers, hidden=args.hidden, epochs=args.epochs, lr=args.lr, theta=args.theta,
                  num_steps=args.num_steps, seed=args.seed,
                  on_epoch=lambda label, e, ppl: print(f"{label}: epoch {e}, perplexity {ppl:.2f}")
                  if e % 10 == 0 else None)
    header, rows = summary_rows(results, args.theta)
    print(format_table(header, rows))
    draw(results, out, args.theta)
    print(f"pictures: {out / 'gradient_flow.png'}, {out / 'grad_norm.png'}")


if __name__ == "__main__":
    parser = OneLineParser(description=__doc__)
    add_arguments(parser)
    with_one_line_errors(main, parser.parse_args())
