"""Optimisers and learning-rate schedules: each rule held to torch.optim, its fused twins (Numba, and CUDA
through the host build) held to it, its state in the checkpoint (resume stays bit-exact), the rate of every
step as the schedule says, and nonsense refused in one line."""
import math
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import ENGINES
from scratchrnn.checkpoint import load_checkpoint
from scratchrnn.errors import ConfigError
from scratchrnn.optimizers import OPTIMIZERS, Optimizer
from scratchrnn.schedules import learning_rate
from scratchrnn.selftest import update_cases

# scratchrnn train's recipe: the best of README's sweep at 5 and 20 minutes on the Time Machine
TRAIN_RECIPE = dict(optimizer="adamw", lr=3e-3, dropout=0.4)

CASES = list(update_cases())                 # every rule, and the options that change its code path
IDS = [f"{name}{'-' + '-'.join(hyper) if hyper else ''}" for name, hyper in CASES]


def torch_optimizer(torch, name, params, lr, hyper):
    """The same rule in torch.optim, with the same hyperparameters."""
    o = Optimizer(name, types.SimpleNamespace(xp=np, flat_params=np.zeros(1), dtype=np.dtype("float64")), **hyper).hyper
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=o["weight_decay"])
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=o["momentum"], nesterov=o["nesterov"],
                               weight_decay=o["weight_decay"])
    if name in ("adam", "adamw"):
        kind = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
        return kind(params, lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"])
    return torch.optim.RMSprop(params, lr=lr, alpha=o["alpha"], eps=o["eps"], momentum=o["momentum"],
                               weight_decay=o["weight_decay"])


@pytest.mark.parametrize("theta", [None, 2.0], ids=["unclipped", "clipped"])
@pytest.mark.parametrize("name, hyper", CASES, ids=IDS)
def test_each_rule_is_torch_optims_update(name, hyper, theta, rng):
    """Five steps on the same gradients (clipped by our rule first, then handed to torch as its .grad),
    float64: the parameters agree to 1e-12 after every step."""
    torch = pytest.importorskip("torch")
    from scratchrnn.engines.reference import ReferenceEngine
    size, lr = 257, 0.05
    p0 = rng.standard_normal(size)
    model = types.SimpleNamespace(xp=np, flat_params=p0.copy(), flat_grads=np.zeros(size), dtype=np.dtype("float64"))
    ours, engine = Optimizer(name, model, **hyper), ReferenceEngine(model)
    param = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    theirs = torch_optimizer(torch, name, [param], lr, hyper)
    for _ in range(5):
        g = rng.standard_normal(size)
        model.flat_grads[...] = g
        norm = np.linalg.norm(g)
        engine.update(ours, lr, theta)
        param.grad = torch.from_numpy(g * (theta / norm if theta is not None and norm > theta else 1.0))
        theirs.step()
        np.testing.assert_allclose(model.flat_params, param.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert not np.allclose(model.flat_params, p0)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("name, hyper", CASES, ids=IDS)
def test_the_fused_twins_are_the_numpy_update(model_on, name, hyper, dtype, tol, rng):
    """Clipping and update fused in one pass (Numba, and the CUDA kernel built for the host), five steps
    through each engine's `update` on the same gradients: the same norm, parameters and state as the
    NumPy update of the reference engine."""
    results = []
    grads = [rng.standard_normal(1) for _ in range(0)]
    for engine in ENGINES:
        m = model_on(engine, 9, 8, 2, "gru", dtype=dtype, seed=0)
        if not grads:
            grads = [np.random.default_rng(k).standard_normal(m.flat_grads.shape) * 0.3 for k in range(5)]
        optimizer = Optimizer(name, m, **hyper)
        norms = []
        for g in grads:
            m.flat_grads[...] = g
            norms.append(float(m.update(optimizer, 0.01, 1.0)))
        results.append((norms, m.flat_params.copy(), [a.copy() for a in optimizer.state.values()], optimizer.t))
    for norms, params, state, t in results[1:]:
        np.testing.assert_allclose(norms, results[0][0], rtol=tol)
        np.testing.assert_allclose(params, results[0][1], rtol=tol, atol=tol)
        for a, b in zip(state, results[0][2]):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        assert t == results[0][3] == 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="lion"), "unknown optimizer 'lion'"), (dict(name="adam", momentum=0.9), "takes no 'momentum'"),
    (dict(name="adam", beta1=1.0), r"beta1 must be in \(0, 1\)"), (dict(name="rmsprop", eps=0.0), "eps must be"),
    (dict(name="momentum", momentum=-0.1), r"momentum must be in \[0, 1\)"),
    (dict(name="sgd", weight_decay=math.nan), "weight decay must be"),
    (dict(name="momentum", momentum=0.0, nesterov=True), "Nesterov momentum needs a momentum > 0"),
])
def test_an_optimizer_that_makes_no_sense_is_refused(kwargs, message):
    model = types.SimpleNamespace(xp=np, flat_params=np.zeros(3), dtype=np.dtype("float32"))
    with pytest.raises(ConfigError, match=message):
        Optimizer(kwargs.pop("name"), model, **kwargs)


def test_the_schedules_give_the_rate_they_promise():
    assert learning_rate(2.0, 7, 0.5, 50) == 2.0
    rates = [learning_rate(1.0, e, 1.0, 50, "char-rnn", lr_decay=0.5, decay_after=3) for e in range(6)]
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.25, 0.125]                      # char-rnn: from epoch 3 on, x0.5 each
    assert [learning_rate(1.0, e, 0.5, 50, "step", step_size=2, gamma=0.1) for e in (0, 1, 2, 5)] == \
        pytest.approx([1.0, 1.0, 0.1, 0.01])
    assert learning_rate(1.0, 0, 0.5, 10, "cosine", warmup=2.0) == pytest.approx(0.25)    # warming up
    assert learning_rate(1.0, 2, 0.0, 10, "cosine", warmup=2.0) == pytest.approx(1.0)     # the top
    assert learning_rate(1.0, 5, 1.0, 10, "cosine", warmup=2.0) == pytest.approx(0.5)     # half-way down
    assert learning_rate(1.0, 9, 1.0, 10, "cosine", warmup=2.0) == pytest.approx(0.0, abs=1e-12)


def test_a_schedules_parameter_under_another_schedule_is_refused():
    """--warmup 2 under the default constant schedule (or --lr-decay under step, ...) was ignored without a word: the
    run trained at the full rate at once. Each parameter is its schedule's; given to another, one line names it.
    Left at its default (indistinguishable from not given), or given to its own schedule, it is taken."""
    from scratchrnn import book, cli
    from scratchrnn.schedules import SCHEDULE_DEFAULTS, SCHEDULE_PARAMETERS
    for schedule, keys in SCHEDULE_PARAMETERS.items():
        for key in set(SCHEDULE_DEFAULTS) - {"schedule"}:
            flag, value = "--" + key.replace("_", "-"), str(SCHEDULE_DEFAULTS[key] + 1 if key in ("decay_after",
                                                             "step_size", "warmup") else SCHEDULE_DEFAULTS[key] / 2)
            for parser in (cli.build_parser(), book.build_parser("the book", {})):
                argv = (["train"] if parser.prog.endswith("scratchrnn") else []) + ["--schedule", schedule, flag, value]
                args = parser.parse_args(argv)
                if key in keys:
                    assert cli.optimizer_config(args)[key] == float(value)
                else:
                    owner = next(name for name, taken in SCHEDULE_PARAMETERS.items() if key in taken)
                    with pytest.raises(ConfigError, match=f"the {schedule} schedule takes no {flag}; it is the "
                                                          f"{owner} schedule's: give --schedule {owner} with it"):
                        cli.optimizer_config(args)
            assert cli.optimizer_config(cli.build_parser().parse_args(["train", "--schedule", schedule, flag,
                                                                       str(SCHEDULE_DEFAULTS[key])]))


def scratchrnn(*args):
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], capture_output=True, text=True, timeout=600)


SMALL = ["--hidden", "16", "--layers", "2", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
         "--num-steps", "10", "--device", "cpu", "--log-every", "1"]


@pytest.mark.parametrize("recipe", [["--optimizer", "adam", "--lr", "0.01", "--schedule", "cosine", "--warmup", "0.5"],
                                    ["--optimizer", "rmsprop", "--lr", "0.002", "--schedule", "char-rnn",
                                     "--decay-after", "1", "--momentum", "0.5"],
                                    ["--optimizer", "momentum", "--lr", "0.5", "--nesterov", "--schedule", "step",
                                     "--step-size", "1"],
                                    ["--optimizer", "adamw", "--lr", "0.01"]], ids=["adam", "rmsprop", "momentum",
                                                                                   "adamw"])
def test_resume_is_bit_exact_for_every_optimizer_and_schedule(tmp_path, recipe):
    """The optimiser's moments and step count travel in the checkpoint and the schedule follows the epoch and
    the minibatch: a run stopped after its first minibatch (a time budget) and resumed ends with exactly the
    weights and optimiser state of the run in one go; the rate is logged and written to metrics.csv."""
    one, two = tmp_path / "one", tmp_path / "two"
    r = scratchrnn("train", "--out", str(one), "--epochs", "3", *recipe, *SMALL)
    assert r.returncode == 0, r.stderr
    assert scratchrnn("train", "--out", str(two), "--epochs", "3", "--max-minutes", "1e-5", *recipe,
                      *SMALL).returncode == 0
    arrays, manifest = load_checkpoint(two / "last.npz")
    rule = OPTIMIZERS[recipe[1]][0]
    assert manifest["batch"] == 1 and manifest["optimizer_t"] == 1
    assert all(f"optimizer.{n}" in arrays for n in rule.STATE)
    assert scratchrnn("train", "--resume", str(two), "--device", "cpu").returncode == 0
    a, _ = load_checkpoint(one / "last.npz")
    b, _ = load_checkpoint(two / "last.npz")
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)
    rates = [float(line.split(",")[-1]) for line in (one / "metrics.csv").read_text().splitlines()[1:]]
    logged = [float(line.split("lr ")[1].split()[0]) for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert len(rates) == 3 and logged == pytest.approx(rates, rel=1e-3)
    if recipe[5:6] in (["char-rnn"], ["step"], ["cosine"]):
        assert rates[0] != rates[-1]                                       # the schedule moved the rate


@pytest.mark.parametrize("args, needle", [(["--optimizer", "adam", "--momentum", "0.9"], "takes no 'momentum'"),
                                          (["--optimizer", "adam", "--beta2", "1"], "beta2 must be in"),
                                          (["--schedule", "step", "--gamma", "0"], "--gamma must be in (0, 1]"),
                                          (["--optimizer", "lion"], "invalid choice: 'lion'")])
def test_an_optimizer_flag_that_makes_no_sense_is_one_line(tmp_path, args, needle):
    r = scratchrnn("train", "--out", str(tmp_path / "o"), *args, *SMALL)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert not (tmp_path / "o" / "last.npz").exists()


def test_train_defaults_to_the_sweeps_recipe_and_each_optimizer_to_its_own_rate():
    """`scratchrnn train` trains with the recipe README's sweep chose; an optimiser named without --lr takes its
    own rate (SGD the book's), so that `--optimizer sgd` alone is the book's step and not Adam's tiny one; the
    book's examples keep the book's SGD without dropout."""
    from scratchrnn import book, cli
    from scratchrnn.cmdline import learning_rate_of

    def train_config(*flags):
        return cli.config_from_args(cli.build_parser().parse_args(["train", *flags]))

    c = train_config()
    assert (c["optimizer"], c["lr"], c["dropout"]) == (TRAIN_RECIPE["optimizer"], TRAIN_RECIPE["lr"],
                                                      TRAIN_RECIPE["dropout"])
    assert train_config("--optimizer", "sgd")["lr"] == 2.0
    assert train_config("--optimizer", "momentum")["lr"] == pytest.approx(0.2)
    assert train_config("--optimizer", "rmsprop")["lr"] == 2e-3 and train_config("--optimizer", "adam")["lr"] == 3e-3
    assert train_config("--optimizer", "rmsprop", "--lr", "0.01")["lr"] == 0.01
    args = book.build_parser("", dict(lr=1.0)).parse_args([])
    assert (args.optimizer, learning_rate_of(args), args.dropout) == ("sgd", 1.0, 0.0)
    assert learning_rate_of(book.build_parser("", dict(lr=1.0)).parse_args(["--optimizer", "rmsprop"])) == 2e-3
