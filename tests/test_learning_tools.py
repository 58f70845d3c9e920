"""Gradient flow through time, `scratchrnn diagnose`, and the book's exercises."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CELL_NAMES
from scratchrnn import diagnose, output
from scratchrnn.model import RNNLM

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "examples" / "exercises").glob("*.py"))


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_gradient_flow_is_recorded_the_same_by_both_engines(cell, rng):
    X, Y = rng.integers(0, 11, (9, 4)), rng.integers(0, 11, (9, 4))
    flows = []
    for engine in ("reference", "fast"):
        m = RNNLM(11, 8, 3, cell, dtype="float64", engine=engine, seed=1)
        assert m.gradient_flow is None
        m.trace_gradient_flow = True
        m.loss_and_grad(X, Y, m.begin_state(4))
        flows.append(m.gradient_flow)
    assert flows[0].shape == (3, 9) and np.all(flows[0] > 0)
    np.testing.assert_allclose(flows[0], flows[1], rtol=1e-10)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_last_step_loss_flow_starts_at_the_output_gradient(cell, rng):
    """With only the last step's loss, the gradient reaching the top layer's H_T is exactly what the
    output layer sends back, dlogits_T W_hq^T; lower layers and earlier steps get only what flows back."""
    m = RNNLM(11, 8, 2, cell, dtype="float64", engine="reference", seed=2)
    X, Y = rng.integers(0, 11, (6, 3)), rng.integers(0, 11, (6, 3))
    flow = diagnose.last_step_gradient_flow(m, X, Y)
    logits, _ = m.forward(X, m.begin_state(3))
    _, P = output.softmax_cross_entropy(logits, Y.reshape(-1))
    dlogits = output.softmax_cross_entropy_backward(P, Y.reshape(-1))[-3:]      # step T's rows
    assert flow[-1, -1] == pytest.approx(np.linalg.norm(dlogits @ m.params["W_hq"].T), rel=1e-12)
    assert np.all(flow[:, :-1] < flow[-1, -1])
    assert not m.trace_gradient_flow


def test_diagnose_draws_the_pictures(tmp_path):
    results = diagnose.run(layers=2, hidden=8, epochs=2, max_tokens=3000, batch_size=8, num_steps=10)
    assert list(results) == ["tanh RNN", "GRU", "LSTM"]
    for r in results.values():
        assert r["flow_train"].shape == r["flow_last"].shape == (2, 10)
        assert len(r["norms"]) > 0 and np.all(np.isfinite(r["norms"]))
    header, rows = diagnose.summary_rows(results, 1.0)
    assert len(rows) == 3 and len(header) == len(rows[0])
    diagnose.draw(results, tmp_path, 1.0)
    for name in ("gradient_flow.png", "grad_norm.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_diagnose_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "scratchrnn", "diagnose", "--epochs", "1", "--hidden", "8",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "| tanh RNN" in r.stdout and (tmp_path / "gradient_flow.png").exists()


def test_every_exercise_of_the_book_is_there():
    assert {p.stem for p in EXERCISES} == {"no_clipping", "no_detaching", "relu_rnn", "cells_and_depth",
                                           "temperature", "another_book", "more_books", "embeddings",
                                           "hyperparameters"}


@pytest.mark.parametrize("script", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_exercise_runs_and_prints_a_table(script, tmp_path):
    r = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "|---" in r.stdout and "Traceback" not in r.stderr


def test_an_exercise_says_the_engines_note_once_however_many_runs_it_trains(monkeypatch, capsys):
    """The command and the book's examples tell an Intel CPU without MKL how to train faster; the exercises train
    through experiments.train_run, which said nothing. The note now comes with the first run, and once."""
    from scratchrnn import experiments
    from scratchrnn.engines import mkl
    monkeypatch.setattr(mkl, "intel_cpu", lambda: True)
    monkeypatch.setattr(mkl, "load", lambda: (None, "libmkl_rt.so.3: cannot open shared object file"))
    monkeypatch.delenv(mkl.VARIABLE, raising=False)
    experiments.note_engine_once.cache_clear()
    for cell in ("rnn", "gru"):
        experiments.train_run(cell, 1, 8, epochs=1, max_tokens=2000, batch_size=4, num_steps=5)
    err = capsys.readouterr().err
    assert err.count("note: on this Intel CPU the fast engine's matrix products run on NumPy's OpenBLAS") == 1, err
    experiments.note_engine_once.cache_clear()


@pytest.mark.parametrize("script, args, message", [
    ("another_book", ["--corpus", "/nonexistent/book.txt"], "error: corpus '/nonexistent/book.txt' does not exist"),
    ("more_books", ["--corpus", "/nonexistent/*.txt"], "error: --corpus /nonexistent/*.txt: no file matches it"),
    ("temperature", ["--from", "/nonexistent"], "error: checkpoint '/nonexistent/last.npz' does not exist"),
    ("temperature", ["--prefix", "Zebra"], "error: prefix has characters outside the vocabulary: 'Z'"),
    ("hyperparameters", ["--epochs", "-3"], "error: argument --epochs: expected a positive integer, got -3"),
    ("cells_and_depth", ["--seconds", "0"], "error: argument --seconds: expected a positive finite number"),
])
def test_an_exercise_given_bad_input_says_so_in_one_line(script, args, message, tmp_path):
    path = ROOT / "examples" / "exercises" / f"{script}.py"
    r = subprocess.run([sys.executable, str(path), "--quick", "--out", str(tmp_path), *args], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 2 and r.stderr.startswith(message) and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_an_exercise_on_a_text_too_short_names_no_flag_it_lacks(tmp_path):
    """another_book on a text of 22 characters said "use a longer text, or --batch-size 1 --num-steps 10", flags the
    exercise does not take (it trains in 32 x 35 minibatches): one line asks for a longer text."""
    (tmp_path / "tiny.txt").write_text("hello world, a short book.\n")
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "exercises" / "another_book.py"), "--quick", "--out",
                        str(tmp_path), "--corpus", str(tmp_path / "tiny.txt")], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 2 and r.stderr == ("error: the text has 22 tokens to train on, too few for the exercise's "
                                              "minibatch of 32 x 35 (needs at least 1,156): use a longer text\n")


LATE_PLATEAUS = ROOT / "examples" / "late_plateaus.py"


def test_late_plateaus_recovers_each_chunks_perplexity_from_the_running_sum(load_script):
    """The per-chunk perplexities the plateau study prints are cut out of train_epoch's running loss sum:
    their geometric mean is the epoch's perplexity, and the lr schedule is applied as asked."""
    from scratchrnn.data import SeqDataLoader, load_corpus
    lp = load_script(LATE_PLATEAUS)
    corpus, vocab = load_corpus(max_tokens=3000)
    lrs = []
    m = RNNLM(len(vocab), 16, 1, "rnn", seed=0)
    curve, steps = lp.train_recording(m, SeqDataLoader(corpus, 8, 10, seed=0), 3,
                                      lambda e: lrs.append(e) or (1.0 if e < 3 else 0.1))
    assert lrs == [1, 2, 3] and len(curve) == len(steps) == 3
    for ppl, chunks in zip(curve, steps):
        assert len(chunks) == 37                  # (3000 - offset - 1) // 8 // 10 for every offset in 0..10
        assert np.exp(np.mean([np.log(p) for p, _ in chunks])) == pytest.approx(ppl, rel=1e-9)
        assert all(g > 0 for _, g in chunks)
    assert lp.spans([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12" and lp.spans([]) == "none"
    assert lp.epochs_to_show([487, 488, 499], 299, 499) == [485, 486, 487, 499]
    assert lp.epochs_to_show([300, 301], 299, 499) == [299, 300, 499]          # nothing before the look
    assert lp.epochs_to_show([299, 300], 299, 499) == [499]                    # a plateau from the start
    assert lp.epochs_to_show([], 299, 499) == [499]
    row = lp.summary([0, 1], [[(2.0, 0.5), (1.0, 2.0)], [(8.0, 1.5), (1.0, 0.1)], [(9.9, 9.9)]])
    assert row == [2, "4.000", "1.00", "1.000", "1.05", "50%"]


def test_late_plateaus_runs(tmp_path):
    r = subprocess.run([sys.executable, str(LATE_PLATEAUS), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| at most 1.1 (calm)" in r.stdout and "chunk by chunk" in r.stdout and "  epoch 6: perplexity" in r.stdout
    assert (tmp_path / "late_plateaus.png").exists()


def test_late_plateaus_given_a_look_past_the_end_says_so_in_one_line():
    r = subprocess.run([sys.executable, str(LATE_PLATEAUS), "--epochs", "5", "--from", "9"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and r.stderr == "error: --from 9 is after the last epoch (5)\n", r.stderr
