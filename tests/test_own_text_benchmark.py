"""benchmarks/own_text.py runs, and scores both sides with the same evaluation (a smoke run of a few
seconds: its figures are measured by running it, never by a test)."""
import importlib.util
import subprocess
import sys
from pathlib import Path


SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "own_text.py"


def test_own_text_benchmark_prints_both_sides(tmp_path):
    corpus = tmp_path / "t.txt"
    corpus.write_text("Tyger Tyger, burning bright,\nIn the forests of the night;\n" * 400)
    r = subprocess.run([sys.executable, str(SCRIPT), str(corpus), "--minutes", "0.02", "--threads", "1",
                        "--same-recipe", "--dropout", "0.2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "| scratchrnn (scratchrnn train's defaults) |" in r.stdout
    assert "| scratchrnn (Adam 2e-3, dropout 0.2) |" in r.stdout
    if importlib.util.find_spec("torch") is None:
        return
    assert "| PyTorch " in r.stdout and "differs from PyTorch's own by at most" in r.stdout
    gap = float(r.stdout.rsplit("at most ", 1)[1].split()[0])
    assert gap < 1e-3                                  # the same evaluation for both, checked on PyTorch's weights


def test_own_text_benchmark_refuses_a_bad_corpus_in_one_line():
    r = subprocess.run([sys.executable, str(SCRIPT), "/no/such/text.txt", "--minutes", "0.01"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: corpus '/no/such/text.txt' does not exist")
