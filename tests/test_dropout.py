"""Dropout between layers (char-rnn's placement): its backward against finite differences with the masks
held fixed, in every engine, every cell, depths 1-3; the masks as promised; off in validation and
generation; the generator's state in the checkpoint, so that resume with dropout stays bit-exact."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import CELL_VARIANTS, ENGINES, VARIANT_IDS
from scratchrnn.checkpoint import load_checkpoint
from scratchrnn.errors import ConfigError
from scratchrnn.gradcheck import check_model, relative_error
from scratchrnn.model import RNNLM


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_dropout_backward_matches_finite_differences(model_on, engine, cell, nonlinearity, num_layers):
    prepare = None
    if engine == "cuda-on-host":
        from scratchrnn.engines import use_host_cuda_kernels
        prepare = use_host_cuda_kernels
    results = check_model(cell, num_layers, nonlinearity, engine="reference" if prepare else engine,
                          prepare=prepare, dropout=0.4)
    for errors in results.values():
        assert max(errors.values()) < 1e-6, errors


def test_a_dropped_gradient_is_caught(monkeypatch):
    """The check can fail: a backward that forgets the mask of the top layer's dropout is caught."""
    from scratchrnn import dropout
    from scratchrnn.engines import reference
    calls = []
    monkeypatch.setattr(reference, "dropout_backward", lambda dHd, M: calls.append(1) or dHd)
    errors = check_model("gru", 2, engine="reference", dropout=0.4)["chunk 1"]
    assert calls and errors["W_hq"] < 1e-6 and max(errors.values()) > 1e-3
    assert dropout.dropout_backward is not reference.dropout_backward


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_drops_the_same_units_given_the_same_masks(model_on, engine, rng):
    X, Y = rng.integers(0, 11, (5, 3)), rng.integers(0, 11, (5, 3))
    ref = RNNLM(11, 8, 2, "lstm", dtype="float64", engine="reference", seed=1, dropout=0.3)
    m = model_on(engine, 11, 8, 2, "lstm", dtype="float64", seed=1, dropout=0.3)
    masks = ref.dropout_masks(5, 3)
    l_ref, _, _ = ref.loss_and_grad(X, Y, ref.begin_state(3), masks=masks)
    l_m, _, _ = m.loss_and_grad(X, Y, m.begin_state(3), masks=masks)
    assert abs(float(l_ref) - float(l_m)) < 1e-12 and relative_error(ref.flat_grads, m.flat_grads) < 1e-12
    plain = RNNLM(11, 8, 2, "lstm", dtype="float64", engine="reference", seed=1)
    plain.loss_and_grad(X, Y, plain.begin_state(3))
    assert relative_error(plain.flat_grads, m.flat_grads) > 1e-3                   # dropout did something


def test_the_masks_are_inverted_dropout_from_the_runs_generator():
    m = RNNLM(11, 64, 3, "gru", seed=5, dropout=0.25)
    masks = m.dropout_masks(35, 32)
    assert masks.shape == (3, 35, 32, 64) and masks.dtype == np.float32
    assert set(np.unique(masks)) == {0.0, np.float32(1 / 0.75)}
    assert abs((masks == 0).mean() - 0.25) < 0.01 and abs(masks.mean() - 1) < 0.02
    again = RNNLM(11, 64, 3, "gru", seed=5, dropout=0.25)
    assert np.array_equal(again.dropout_masks(35, 32), masks)                       # seeded by the run
    assert not np.array_equal(m.dropout_masks(35, 32), masks)                       # a new mask every chunk
    with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
        RNNLM(11, 8, 1, "gru", dropout=1.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_no_dropout_in_validation_and_generation(model_on, engine, rng):
    """The forward alone (validation, generation) never drops: it gives the logits of the same weights
    without dropout."""
    X = rng.integers(0, 11, (6, 2))
    m = model_on(engine, 11, 8, 2, "rnn", dtype="float64", seed=2, dropout=0.5)
    plain = RNNLM(11, 8, 2, "rnn", dtype="float64", seed=2, engine="reference")
    logits, _ = m.forward(X, m.begin_state(2))
    assert relative_error(logits, plain.forward(X, plain.begin_state(2))[0]) < 1e-12


def test_resume_with_dropout_is_bit_exact(tmp_path):
    args = ["--hidden", "16", "--layers", "2", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
            "--num-steps", "10", "--device", "cpu", "--dropout", "0.3", "--optimizer", "adam", "--lr", "0.01"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "scratchrnn", "train", *a], capture_output=True,  # noqa
                                    text=True, timeout=600)
    assert run("--out", str(tmp_path / "one"), "--epochs", "3", *args).returncode == 0
    assert run("--out", str(tmp_path / "two"), "--epochs", "3", "--max-minutes", "1e-5", *args).returncode == 0
    _, manifest = load_checkpoint(tmp_path / "two" / "last.npz")
    assert manifest["batch"] == 1 and manifest["dropout_rng"]["bit_generator"] == "PCG64"
    assert run("--resume", str(tmp_path / "two"), "--device", "cpu").returncode == 0
    a, _ = load_checkpoint(tmp_path / "one" / "last.npz")
    b, _ = load_checkpoint(tmp_path / "two" / "last.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    without = tmp_path / "none"
    plain = args[:-6] + ["--optimizer", "adam", "--lr", "0.01"]                   # the same, without dropout
    assert run("--out", str(without), "--epochs", "3", *plain).returncode == 0
    c, _ = load_checkpoint(without / "last.npz")
    assert not np.array_equal(a["fc.weight"], c["fc.weight"])                       # and the dropout was on
