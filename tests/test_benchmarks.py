"""The CPU benchmark's own arithmetic (benchmarks/bench_cpu.py): its GEMM list is the step's FLOPs."""
from pathlib import Path

import pytest

from conftest import CELL_NAMES

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cpu.py"


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script(BENCH)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_the_gemm_floor_times_exactly_the_steps_flops(bench, cell, layers):
    """The GEMMs timed for the floor add up to the FLOPs per token the table divides by."""
    nh = 64
    flops = sum(count * 2 * M * K * N for count, M, K, N, _, _ in bench.step_gemms(cell, layers, nh))
    assert flops == bench.flops_per_token(cell, layers, nh) * bench.T * bench.B


@pytest.mark.parametrize("script, args", [("bench_cpu.py", ["--steps", "0"]), ("bench_cpu.py", ["--memory-steps", "5"]),
                                          ("book_run_torch.py", ["--epochs", "-1"])])
def test_benchmark_flags_are_checked_in_one_line(script, args):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, str(BENCH.parent / script), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: argument") and len(r.stderr.strip().splitlines()) == 1


def test_the_torch_book_run_trains_the_scratch_rnn_from_the_books_init():
    """`book_run_torch.py --scratch --init normal` runs and prints the book's closing line."""
    import subprocess
    import sys
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, str(BENCH.parent / "book_run_torch.py"), "--scratch", "--init", "normal",
                        "--epochs", "2", "--every", "1", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("epoch    1  perplexity") and lines[1].startswith("epoch    2  perplexity")
    assert lines[2].startswith("perplexity ") and "tokens/sec on cpu" in lines[2]
