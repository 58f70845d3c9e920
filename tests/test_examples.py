"""The book's example scripts, run as a user runs them."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script, *args):
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("script", ["train_deep_lstm.py", "train_rnn_scratch.py"])
def test_example_prints_what_the_book_prints(script, tmp_path):
    r = run(script, "--device", "cpu", "--epochs", "10", "--hidden", "32", "--save", str(tmp_path / "w.npz"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("epoch   10  perplexity") for line in lines)
    assert any(line.startswith("perplexity ") and "tokens/sec on cpu" in line for line in lines)
    assert any(line.startswith("time traveller") for line in lines)
    assert any(line.startswith("traveller") for line in lines)
    assert (tmp_path / "w.npz").stat().st_size > 0


def test_example_auto_device_says_what_it_picked():
    r = run("train_deep_lstm.py", "--epochs", "1", "--hidden", "8", "--layers", "1")
    assert r.returncode == 0, r.stderr
    assert "device: auto picked" in r.stderr
    if "device: auto picked cpu" in r.stderr:                  # and why not the GPU, in the same line
        assert "device: auto picked cpu (--device gpu" in r.stderr


def test_gpu_without_cupy_or_gpu_is_one_clear_line():
    try:
        import cupy  # noqa: F401
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present")
    except Exception:
        pass
    r = run("train_deep_lstm.py", "--device", "gpu", "--epochs", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("error: --device gpu")
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr"), (["--hidden", "0"], "--hidden"), (["--epochs", "x"], "--epochs"),
    (["--lr", "nan"], "--lr"), (["--corpus", "/no/such/file.txt"], "does not exist"),
    (["--batch-size", "500"], "too short for one minibatch"), (["--max-tokens", "0"], "--max-tokens"),
    (["--prefix", "Zeus", "--epochs", "1000"], "prefix has characters outside the vocabulary: 'Z'"),
    (["--save", "/no/such/dir/w.npz", "--epochs", "1000"],
     "--save /no/such/dir/w.npz: the folder '/no/such/dir' does not exist"),
])
def test_bad_input_is_one_line_and_non_zero(args, message):
    r = run("train_deep_lstm.py", "--device", "cpu", "--epochs", "1", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr
    assert "perplexity" not in r.stdout                       # stopped before training, nothing lost
