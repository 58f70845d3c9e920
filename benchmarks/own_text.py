"""The measure that matters to a person with their own text: the best validation perplexity reached in a
wall-clock budget, scratchrnn against PyTorch doing the same work.

    python benchmarks/own_text.py [CORPUS] --minutes 5 [--threads 2] [--same-recipe] [--scratch-args "..."]

Both train the same 2 x 256 LSTM on the same tokens (`scratchrnn train`'s loader: the whole text, every
character), the same 90/10 split and the same minibatches (our sequential iterator, one seed), for the same
budget, one after the other:

  - scratchrnn with the recipe `scratchrnn train` uses by default (or the flags of --scratch-args);
  - PyTorch 2.13 on the CPU (`nn.LSTM`, Adam at 2e-3, clipping at 1: what a PyTorch user writes first),
    when torch is installed.

PyTorch runs in a process of its own, as a person runs it. Both are scored the same way: validation perplexity
after every epoch and when the budget runs out, the evaluation inside the budget, the best one counts. The
evaluation is ours for both (PyTorch's weights are loaded into an RNNLM through load_state_dict); it is
checked against PyTorch's own on its final weights. --same-recipe also runs scratchrnn with PyTorch's recipe
(Adam 2e-3, and --dropout P on both sides). The budget does not count the setup (loading, building, Numba's
compilation), the same for both.
"""
import argparse
import concurrent.futures
import math
import multiprocessing
import shlex
import time

import numpy as np

from scratchrnn.backend import cpu_model
from scratchrnn.cli import build_parser, config_from_args
from scratchrnn.cmdline import OneLineParser, positive_float, positive_int, seed_int, with_one_line_errors
from scratchrnn.data import SeqDataLoader, load_corpus
from scratchrnn.model import model_from_config
from scratchrnn.optimizers import optimizer_from_config
from scratchrnn.schedules import rate_of
from scratchrnn.train import evaluate, train_epoch

B, T, HIDDEN, LAYERS = 32, 35, 256, 2


def scratch_defaults(extra):
    """`scratchrnn train`'s defaults (its parser, so they are the very ones), with `extra` flags on top."""
    return build_parser().parse_args(["train", *extra])


def run_ours(args, corpus, val, seconds, seed):
    """Train within `seconds`; returns (best validation perplexity, tokens/s, epochs, curve)."""
    config = {**config_from_args(args), "hidden": HIDDEN, "layers": LAYERS, "cell": "lstm", "seed": seed}
    model = model_from_config(config, args.vocab_size, "cpu", B, T)
    optimizer = optimizer_from_config(config, model)
    loader = SeqDataLoader(corpus, B, T, seed=seed)
    budget = Budget(seconds)
    best, curve, tokens, epoch = math.inf, [], 0, 0
    while not budget.spent():
        rate = rate_of(config, epoch, loader.batches_per_epoch())
        try:
            _, _ = train_epoch(model, loader, rate, args.theta, optimizer=optimizer,
                               on_step=lambda pos, norm: budget.check(pos))
            done = True
        except Budget.Spent as e:
            done = False
            tokens += e.position.tokens
        else:
            tokens += budget.last_tokens
        val_ppl = evaluate(model, val, B, T)
        best = min(best, val_ppl)
        curve.append(round(val_ppl, 3))
        epoch += done
    return best, tokens / budget.elapsed(), epoch, curve


class Budget:
    """A wall-clock budget that stops training at the end of the minibatch that crosses it."""

    class Spent(Exception):
        def __init__(self, position):
            self.position = position

    def __init__(self, seconds):
        self.seconds, self.start, self.last_tokens = seconds, time.perf_counter(), 0

    def elapsed(self):
        return time.perf_counter() - self.start

    def spent(self):
        return self.elapsed() > self.seconds

    def check(self, position):
        self.last_tokens = position.tokens
        if self.spent():
            raise Budget.Spent(position)


def run_torch(torch, vocab_size, corpus, val, seconds, seed, lr=2e-3, dropout=0.0):
    """PyTorch's nn.LSTM with Adam and clipping at 1 on our minibatches; scored with our evaluation of its
    weights. Returns (best, tokens/s, epochs, curve, |our evaluation - PyTorch's| on the final weights)."""
    from scratchrnn.torch_baseline import TorchStep
    torch.manual_seed(seed)
    step = TorchStep(torch, "lstm", vocab_size, HIDDEN, LAYERS, lr=lr, theta=1.0, optimizer="adam", dropout=dropout)
    judge = model_from_config(dict(hidden=HIDDEN, layers=LAYERS, cell="lstm", dtype="float32"), vocab_size)
    evaluate(judge, val[:2 * T + 1], 2, T)                 # our evaluation's kernels loaded before the budget starts
    loader = SeqDataLoader(corpus, B, T, seed=seed)
    budget = Budget(seconds)
    best, curve, tokens, epochs = math.inf, [], 0, 0
    while not budget.spent():
        step.state, complete = None, True
        for X, Y in loader:
            step(torch.from_numpy(np.ascontiguousarray(X.T)), torch.from_numpy(np.ascontiguousarray(Y.T)).reshape(-1))
            tokens += X.size
            if budget.spent():
                complete = False
                break
        judge.load_state_dict(step.state_dict())
        val_ppl = evaluate(judge, val, B, T)
        best = min(best, val_ppl)
        curve.append(round(val_ppl, 3))
        epochs += complete
    return best, tokens / budget.elapsed(), epochs, curve, abs(val_ppl - torch_evaluate(torch, step, val))


def run_torch_apart(threads, *args, **kwargs):
    """run_torch in a process of its own on `threads` threads, as a person runs PyTorch (bench_cpu.TheirsApart: in
    ours, its LSTM step page-faulted in some runs, and its OpenMP threads shared the process with MKL's)."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as apart:
        return apart.submit(torch_run, threads, *args, **kwargs).result()


def torch_run(threads, *args, **kwargs):
    """run_torch_apart's process: torch imported there, on `threads` threads."""
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(threads)
    with threadpool_limits(threads):
        return run_torch(torch, *args, **kwargs)


def torch_evaluate(torch, step, val):
    """PyTorch's own validation perplexity of its weights, read as ours reads it (evaluate's rows and chunks)."""
    rows = min(B, (len(val) - 1) // T)
    length = (len(val) - 1) // rows
    Xs = np.asarray(val[:rows * length]).reshape(rows, length)
    Ys = np.asarray(val[1:rows * length + 1]).reshape(rows, length)
    state, total, n = None, 0.0, 0
    step.net.eval()
    with torch.no_grad():
        for i in range(0, (length // T) * T, T):
            X = torch.from_numpy(np.ascontiguousarray(Xs[:, i:i + T].T))
            out, state = step.net(torch.nn.functional.one_hot(X, step.V).float(), state)
            y = torch.from_numpy(np.ascontiguousarray(Ys[:, i:i + T].T)).reshape(-1)
            total += torch.nn.functional.cross_entropy(step.fc(out.reshape(-1, step.H)), y, reduction="sum").item()
            n += y.numel()
    step.net.train()
    return math.exp(total / n)


def main():
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", default=None, help="a UTF-8 text (default: the whole Time Machine)")
    p.add_argument("--minutes", type=positive_float, default=5.0)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--same-recipe", action="store_true", help="also scratchrnn with Adam 2e-3 (and --dropout)")
    p.add_argument("--dropout", type=float, default=0.0, help="for --same-recipe, on both sides")
    p.add_argument("--scratch-args", default="", help="flags of scratchrnn train for our run, e.g. \"--lr 1\"")
    p.add_argument("--skip-torch", action="store_true", help="our run(s) only (a sweep of our recipes)")
    args = p.parse_args()
    with_one_line_errors(run, args)


def run(args):
    from threadpoolctl import threadpool_limits
    corpus, vocab = load_corpus(args.corpus, max_tokens=-1, charset="raw")
    n_val = len(corpus) // 10
    train, val = corpus[:-n_val], corpus[-n_val:]
    try:
        import torch                                  # for its version: its runs go to a process of their own
    except ImportError:
        torch = None
    torch = None if args.skip_torch else torch
    cpu = cpu_model()
    print(f"# own text: {args.corpus or 'the Time Machine'}, {len(train):,} training and {len(val):,} validation "
          f"characters, vocabulary {len(vocab)}; 2 x 256 LSTM, batch {B}, {T} steps; {args.minutes:g} minutes each, "
          f"{args.threads} threads, {cpu}, {time.strftime('%Y-%m-%d')}\n")
    seconds = args.minutes * 60
    rows = []
    with threadpool_limits(args.threads):
        ours = scratch_defaults(shlex.split(args.scratch_args))
        ours.vocab_size = len(vocab)
        recipe = args.scratch_args or "scratchrnn train's defaults"
        rows.append((f"scratchrnn ({recipe})", *run_ours(ours, train, val, seconds, args.seed)))
        if args.same_recipe:
            same = scratch_defaults(["--optimizer", "adam", "--lr", "2e-3", "--dropout", str(args.dropout)])
            same.vocab_size = len(vocab)
            rows.append((f"scratchrnn (Adam 2e-3, dropout {args.dropout:g})",
                         *run_ours(same, train, val, seconds, args.seed)))
        gaps = []
        if torch is not None:
            recipes = [0.0] + ([args.dropout] if args.same_recipe and args.dropout > 0 else [])
            for dropout in recipes:
                best, speed, epochs, curve, gap = run_torch_apart(args.threads, len(vocab), train, val, seconds,
                                                                  args.seed, dropout=dropout)
                rows.append((f"PyTorch {torch.__version__} (Adam 2e-3, dropout {dropout:g})", best, speed, epochs,
                             curve))
                gaps.append(gap)
    print("| run | best validation perplexity | tokens/s | epochs | validation perplexity per epoch (and at the end) |")
    print("|---|---|---|---|---|")
    for name, best, speed, epochs, curve in rows:
        print(f"| {name} | {best:.3f} | {speed:,.0f} | {epochs} | {' '.join(map(str, curve))} |")
    if torch is not None:
        ours, theirs = rows[0], rows[2 if args.same_recipe else 1]
        print(f"\nscratchrnn ({ours[0][12:-1]}) / PyTorch (Adam 2e-3): best validation perplexity "
              f"{ours[1] / theirs[1]:.3f} (below 1: ours lower), tokens/s {ours[2] / theirs[2]:.2f}x")
        if args.same_recipe:
            same, twin = rows[1], rows[-1]
            print(f"the same recipe on both sides (Adam 2e-3, dropout {args.dropout:g}): best validation perplexity "
                  f"{same[1] / twin[1]:.3f}, tokens/s {same[2] / twin[2]:.2f}x")
        print(f"our evaluation of PyTorch's final weights differs from PyTorch's own by at most {max(gaps):.1e}")

if __name__ == "__main__":
    main()
