"""Central finite differences in float64 against every hand-written backward: every cell, depth 1-3,
both iterator modes, two consecutive chunks, every parameter element and the initial state."""
import pytest

from conftest import CELL_NAMES, CELL_VARIANTS, VARIANT_IDS
from scratchrnn.cells import CELLS
from scratchrnn.gradcheck import check_model



@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("random_iter", [False, True], ids=["sequential", "random"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("cell, nonlinearity", CELL_VARIANTS, ids=VARIANT_IDS)
def test_backward_matches_finite_differences(cell, nonlinearity, num_layers, random_iter, engine):
    results = check_model(cell, num_layers, nonlinearity, random_iter, engine=engine)
    assert list(results) == ["chunk 1", "chunk 2"]
    for chunk, errors in results.items():
        # every parameter of every layer and every initial-state array was checked
        assert sum(name.startswith("l") and "_0" not in name for name in errors) == 4 * num_layers
        assert sum(name.endswith("_0") for name in errors) == num_layers * len(CELLS[cell].STATE)
        bad = {name: err for name, err in errors.items() if not err < 1e-6}
        assert not bad, f"{chunk}: {bad}"


def test_a_wrong_backward_is_caught(monkeypatch):
    """The check can fail: break one line of the LSTM backward and it must notice."""
    from scratchrnn.cells import lstm
    original = lstm.backward

    def broken(p, dHs, cache, dstate=None, trace=None):
        dX, dstate0, grads = original(p, dHs, cache, dstate, trace)
        grads["W_hh"] = grads["W_hh"] * 1.001
        return dX, dstate0, grads

    monkeypatch.setattr(lstm, "backward", broken)
    errors = check_model("lstm", 1, engine="reference")["chunk 1"]
    assert errors["l0.W_hh"] > 1e-4
    assert errors["l0.W_xh"] < 1e-6


@pytest.mark.parametrize("engine", ["reference", "fast"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_learnable_embedding_matches_finite_differences(cell, num_layers, engine):
    results = check_model(cell, num_layers, engine=engine, embedding_dim=3)
    for errors in results.values():
        assert "E" in errors
        assert max(errors.values()) < 1e-6, errors
