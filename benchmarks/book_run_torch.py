"""The book's training runs with PyTorch on the CPU, on exactly our data pipeline, to put PyTorch's
wall time and perplexity curve beside ours on the same machine.

Default: the deep LSTM run (d2l.ai "Deep RNNs": 2 x 256 LSTM, lr 2, 500 epochs, batch 32, 35 steps,
sequential partitioning, clipping at 1), beside `python examples/train_deep_lstm.py --device cpu`.
`--scratch` is the book's scratch RNN (one tanh layer of 512, lr 1), beside
`python examples/train_rnn_scratch.py`. `--init normal` starts from the book's N(0, 0.01^2) weights and
zero biases instead of PyTorch's default, as `--init normal` does in ours.

    python benchmarks/book_run_torch.py [--epochs 500] [--threads 2] [--seed 0] [--no-onednn]
    python benchmarks/book_run_torch.py --scratch --init normal --seed 3 --every 10

PyTorch runs its LSTM on the CPU in oneDNN's fused RNN primitive (scratchrnn/torch_baseline.py); `--no-onednn` turns
oneDNN off for its steps, so that the LSTM takes ATen's per-step path, the one its GRU and tanh RNN always take.

It ends with the minor page faults of PyTorch's steps and glibc's allocator settings: PyTorch's LSTM step
page-faults in the tensors glibc maps afresh, unless its mmap threshold is fixed high (bench_cpu.py's docstring).
"""
import math
import time

import numpy as np

from bench_cpu import allocator_line, minor_faults
from scratchrnn.cmdline import OneLineParser, positive_int, seed_int
from scratchrnn.model import INITS, MODEL_DEFAULTS


def main():
    p = OneLineParser(description=__doc__)
    p.add_argument("--scratch", action="store_true", help="the scratch RNN run instead of the deep LSTM")
    p.add_argument("--epochs", type=positive_int, default=500)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--seed", type=seed_int, default=0, help="seeds torch's initialisation and our data iterator")
    p.add_argument("--init", choices=INITS, default=MODEL_DEFAULTS["init"],
                   help="pytorch: PyTorch's default U(-1/sqrt(H), 1/sqrt(H)); normal: the book's N(0, 0.01^2)")
    p.add_argument("--every", type=positive_int, default=50, help="print the perplexity every N epochs")
    p.add_argument("--no-onednn", dest="fused_rnn", action="store_false",
                   help="oneDNN off: PyTorch's LSTM takes ATen's per-step path instead of oneDNN's fused RNN primitive")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        raise SystemExit("error: this comparison needs torch: pip install 'scratchrnn[bench]'") from None
    from scratchrnn.data import SeqDataLoader, load_corpus
    from scratchrnn.torch_baseline import TorchStep
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus, vocab = load_corpus()
    V = len(vocab)
    loader = SeqDataLoader(corpus, 32, 35, seed=args.seed)
    cell, hidden, layers, lr = ("rnn", 512, 1, 1.0) if args.scratch else ("lstm", 256, 2, 2.0)
    step = TorchStep(torch, cell, V, hidden, layers, lr=lr, theta=1.0, init=args.init, fused_rnn=args.fused_rnn)
    start, faults, steps = time.perf_counter(), minor_faults(), 0
    for epoch in range(args.epochs):
        step.state, total, n, t0 = None, 0.0, 0, time.perf_counter()    # state re-initialised each epoch
        for X, Y in loader:
            y = torch.from_numpy(np.ascontiguousarray(Y.T)).reshape(-1)
            loss = step(torch.from_numpy(np.ascontiguousarray(X.T)), y)
            total, n, steps = total + loss.item() * y.numel(), n + y.numel(), steps + 1
        speed = n / (time.perf_counter() - t0)
        if (epoch + 1) % args.every == 0:
            print(f"epoch {epoch + 1:4d}  perplexity {math.exp(total / n):6.2f}", flush=True)
    ppl = math.exp(total / n)
    print(f"perplexity {ppl:.1f} ({ppl:.2f}), {speed:.1f} tokens/sec on cpu "
          f"(PyTorch {torch.__version__}, {args.threads} threads{'' if args.fused_rnn else ', oneDNN off'})")
    print(f"wall time {time.perf_counter() - start:.1f} s for {args.epochs} epochs")
    if faults is not None:
        print(f"page faults: {(minor_faults() - faults) / steps:,.0f} per step; {allocator_line()}")


if __name__ == "__main__":
    main()
