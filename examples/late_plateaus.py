"""Why a run of the book's scratch RNN can end at perplexity 1.17 instead of 1.03.

Trains the scratch RNN of examples/train_rnn_scratch.py (tanh, 512 hidden, lr 1, clipping at 1,
sequential partitioning) and records every step: the perplexity of its chunk and the gradient norm
before clipping. Then it prints, for the epochs from --from on, what a calm epoch and a plateau epoch
(perplexity above 1.1) look like inside:

- chunk 1 of an epoch starts from a zero state, so its first characters cannot be known; in a calm
  epoch it alone keeps the perplexity above 1.00, and it alone has a sizeable gradient;
- in a plateau every chunk is off, and nearly every gradient is clipped: each step moves the weights
  by the same length, lr * theta = 1, so SGD keeps bouncing across the valley instead of settling.

--drop-at E divides the learning rate by 10 from epoch E on (not the book's recipe): the steps
shrink, and a plateau settles within a few epochs.

    python examples/late_plateaus.py --seed 7 --threads 1              # this machine: plateau from epoch 488
    python examples/late_plateaus.py --seed 7 --threads 1 --drop-at 450
"""
import math
import statistics

from scratchrnn.launch import loading

with loading():                 # a Ctrl-C while NumPy and Numba load: one line
    from scratchrnn.cmdline import blas_threads, positive_int, seed_int
    from scratchrnn.data import SeqDataLoader, load_corpus
    from scratchrnn.errors import ConfigError
    from scratchrnn.experiments import out_dir, parser, plot_curves, run_exercise, table
    from scratchrnn.model import INITS, MODEL_DEFAULTS, RNNLM
    from scratchrnn.train import train_epoch

PLATEAU = 1.1                     # an epoch above this perplexity (the bar) counts as a plateau

args_p = parser(__doc__)
args_p.add_argument("--seed", type=seed_int, default=0)
args_p.add_argument("--init", choices=INITS, default=MODEL_DEFAULTS["init"])
args_p.add_argument("--epochs", type=positive_int, default=500)
args_p.add_argument("--from", dest="first", type=positive_int, default=300, metavar="EPOCH",
                    help="summarise the epochs from this one on")
args_p.add_argument("--drop-at", type=positive_int, default=None, metavar="EPOCH",
                    help="lr / 10 from this epoch on (default: lr 1 throughout, as the book)")
args_p.add_argument("--threads", type=positive_int, default=None, help="BLAS threads (default: all cores)")


def train_recording(model, loader, epochs, lr_of_epoch, theta=1.0):
    """Train; return the perplexity of every epoch and, per epoch, [(chunk perplexity, grad norm)]."""
    curve, steps = [], []
    for epoch in range(1, epochs + 1):
        marks = []                           # after each step: (sum of loss * tokens so far, tokens so far, grad norm)
        ppl, _ = train_epoch(model, loader, lr_of_epoch(epoch), theta,
                             on_step=lambda pos, g: marks.append((float(pos.loss_sum), pos.tokens, float(g))))
        chunks, prev_sum, prev_tokens = [], 0.0, 0
        for loss_sum, tokens, grad_norm in marks:                       # a chunk's loss: the running sum's step
            chunks.append((math.exp((loss_sum - prev_sum) / (tokens - prev_tokens)), grad_norm))
            prev_sum, prev_tokens = loss_sum, tokens
        curve.append(ppl)
        steps.append(chunks)
    return curve, steps


def summary(epochs, steps, theta=1.0):
    """One table row for a set of epochs: chunk 1's perplexity and gradient, the other chunks', and the
    share of steps whose gradient was clipped."""
    if not epochs:
        return ["-"] * 6
    first = [steps[e][0] for e in epochs]
    rest = [c for e in epochs for c in steps[e][1:]]
    every = [c for e in epochs for c in steps[e]]

    def ppl(chunks):                                           # perplexity of the tokens of these chunks
        return f"{math.exp(statistics.fmean(math.log(p) for p, _ in chunks)):.3f}"

    def norm(chunks):
        return f"{statistics.median(g for _, g in chunks):.2f}"
    clipped = sum(g > theta for _, g in every) / len(every)
    return [len(epochs), ppl(first), norm(first), ppl(rest), norm(rest), f"{clipped:.0%}"]


def spans(epochs):
    """[488, 489, 490, 495] -> '488-490, 495'"""
    out, start = [], None
    for i, e in enumerate(epochs):
        if start is None:
            start = e
        if i + 1 == len(epochs) or epochs[i + 1] != e + 1:
            out.append(f"{start}-{e}" if e > start else f"{e}")
            start = None
    return ", ".join(out) or "none"


def epochs_to_show(plateau, first, last):
    """The epochs to print chunk by chunk: the two before the first plateau (when the look starts
    before it), the plateau's first epoch, and the last epoch. All 0-based."""
    shown = {last}
    if plateau and plateau[0] > first:
        shown |= {e for e in (plateau[0] - 2, plateau[0] - 1, plateau[0]) if e >= first}
    return sorted(shown)


def main(args):
    hidden, epochs, first = (32, 6, 1) if args.quick else (512, args.epochs, args.first)
    if first > epochs:
        raise ConfigError(f"--from {first} is after the last epoch ({epochs})")
    lr = 1.0
    corpus, vocab = load_corpus(max_tokens=3000 if args.quick else 10000)
    loader = SeqDataLoader(corpus, 32, 35, seed=args.seed)
    model = RNNLM(len(vocab), hidden, 1, "rnn", init=args.init, seed=args.seed)
    drop = args.drop_at

    def lr_of_epoch(epoch):
        return lr / 10 if drop is not None and epoch >= drop else lr
    with blas_threads(args.threads):
        curve, steps = train_recording(model, loader, epochs, lr_of_epoch)

    looked_at = list(range(first - 1, epochs))                        # 0-based epoch indices
    plateau = [e for e in looked_at if curve[e] > PLATEAU]
    calm = [e for e in looked_at if curve[e] <= PLATEAU]
    recipe = f"lr 1, then 0.1 from epoch {drop}" if drop else "lr 1 throughout"
    print(f"tanh RNN {hidden}, init {args.init}, seed {args.seed}, {recipe}; of epochs {first}-{epochs}, "
          f"these end above perplexity {PLATEAU}: {spans([e + 1 for e in plateau])}\n")
    table(["epochs", "how many", "chunk 1 perplexity", "chunk 1 grad norm (median)", "chunks 2.. perplexity",
           "chunks 2.. grad norm (median)", "steps clipped"],
          [[f"at most {PLATEAU} (calm)", *summary(calm, steps)], [f"above {PLATEAU}", *summary(plateau, steps)]])
    print("chunk by chunk, perplexity / grad norm before clipping:")
    for e in epochs_to_show(plateau, looked_at[0], epochs - 1):
        print(f"  epoch {e + 1}: perplexity {curve[e]:.3f} | " + " ".join(f"{p:.2f}/{g:.2f}" for p, g in steps[e]))
    plot_curves(out_dir(args) / "late_plateaus.png", {f"seed {args.seed}, {recipe}": curve},
                f"tanh RNN {hidden}: training perplexity per epoch")


if __name__ == "__main__":
    run_exercise(main, args_p)
