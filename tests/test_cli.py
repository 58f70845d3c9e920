"""The `scratchrnn` command: training with validation, checkpoints, exact resume, Ctrl-C, generation,
gradcheck, and one clear line for every bad input."""
import errno
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CELL_NAMES, read_until, running
from scratchrnn import cli, cmdline
from scratchrnn.checkpoint import load_checkpoint, save_checkpoint
from scratchrnn.cmdline import hold_out_dir
from scratchrnn.errors import CheckpointError, DataError

SMALL = ["--hidden", "16", "--layers", "2", "--max-tokens", "3000", "--charset", "book", "--batch-size", "8",
         "--num-steps", "10", "--device", "cpu", "--log-every", "1"]


def scratchrnn(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], capture_output=True, text=True,
                          timeout=600, env=env, **kw)


def weights(folder, name="last.npz"):
    arrays, manifest = load_checkpoint(folder / name)
    return {k: v for k, v in arrays.items() if not k.startswith("state.")}, manifest


def test_train_writes_checkpoints_metrics_and_plot(tmp_path):
    out = tmp_path / "run"
    r = scratchrnn("train", "--out", str(out), "--epochs", "3", "--plot", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "validation perplexity" in r.stdout and "tokens/sec on cpu" in r.stdout
    assert {p.name for p in out.iterdir()} == {"last.npz", "best.npz", "metrics.csv", "perplexity.png"}
    assert (out / "perplexity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_perplexity,val_perplexity,tokens_per_s,elapsed_s,lr" and len(lines) == 4
    arrays, manifest = weights(out)
    assert manifest["epoch"] == 3 and manifest["batch"] == 0 and len(manifest["vocab"]) == 28
    assert "rnn.weight_hh_l1" in arrays and manifest["best_val"] > 1
    with np.load(out / "last.npz", allow_pickle=False) as f:     # a plain npz: numpy opens it, no pickle
        assert f["fc.bias"].shape == (28,)
    g = scratchrnn("generate", "--from", str(out), "--prefix", "time traveller", "--length", "20")
    assert g.returncode == 0 and g.stdout.startswith("time traveller") and len(g.stdout.rstrip("\n")) == 34


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_resume_is_bit_identical(tmp_path, cell):
    """2N epochs in one go == N epochs, then resume for N more."""
    one, two = tmp_path / "one", tmp_path / "two"
    cli.main(["train", "--out", str(one), "--epochs", "4", "--cell", cell, *SMALL])
    cli.main(["train", "--out", str(two), "--epochs", "2", "--cell", cell, *SMALL])
    cli.main(["train", "--resume", str(two), "--epochs", "4", "--device", "cpu"])
    a, ma = weights(one)
    b, mb = weights(two)
    assert ma["epoch"] == mb["epoch"] == 4
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert [h["train_perplexity"] for h in ma["history"]] == [h["train_perplexity"] for h in mb["history"]]


def test_samples_in_the_log_change_nothing_of_the_run(tmp_path, capsys):
    """--sample N: a line after each epoch's log line with N tokens the model generates (temperature 1, seeded by the
    run's seed and the epoch: the same on a resume); the training's generators are untouched, so a run with samples,
    stopped and resumed with them, ends with the weights of a run without them in one go."""
    plain, sampled = tmp_path / "plain", tmp_path / "sampled"
    cli.main(["train", "--out", str(plain), "--epochs", "4", *SMALL])
    cli.main(["train", "--out", str(sampled), "--epochs", "2", "--sample", "40", *SMALL])
    first = capsys.readouterr().out
    cli.main(["train", "--resume", str(sampled), "--epochs", "4", "--device", "cpu", "--sample", "40", "--log-every",
              "1"])
    samples = re.findall(r"^  sample: '([^'\\]*)'$", first + capsys.readouterr().out, flags=re.M)
    assert len(samples) == 4 and all(len(text) == 40 for text in samples) and len(set(samples)) == 4
    a, ma = weights(plain)
    b, mb = weights(sampled)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert [h["train_perplexity"] for h in ma["history"]] == [h["train_perplexity"] for h in mb["history"]]
    cli.main(["train", "--out", str(tmp_path / "again"), "--epochs", "2", "--sample", "40", *SMALL])
    assert re.findall(r"^  sample: '([^'\\]*)'$", capsys.readouterr().out, flags=re.M) == samples[:2]


def test_resume_random_iteration_is_bit_identical(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    cli.main(["train", "--out", str(one), "--epochs", "3", "--random-iter", *SMALL])
    cli.main(["train", "--out", str(two), "--epochs", "1", "--random-iter", *SMALL])
    cli.main(["train", "--resume", str(two), "--epochs", "3", "--device", "cpu"])
    a, _ = weights(one)
    b, _ = weights(two)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_run_that_overfits_says_so_at_its_end(tmp_path, capsys):
    """A run whose validation perplexity rose far above its best while its training text's fell ended on the same two
    lines as any, the best only a number in them: a note says it overfits, where best.npz's weights are, and what
    holds it off. A random text of ten letters learnt by heart: its validation cannot but rise. Not said where the
    validation rose little, lately, or with the training's."""
    import random
    rng = random.Random(0)
    text = tmp_path / "random.txt"
    text.write_text("".join(rng.choice("abcdefghij") for _ in range(3000)))
    cli.main(["train", "--corpus", str(text), "--out", str(tmp_path / "run"), "--epochs", "40", "--hidden", "128",
              "--layers", "1", "--dropout", "0", "--lr", "0.01", "--batch-size", "8", "--num-steps", "20",
              "--device", "cpu", "--charset", "raw"])
    err = capsys.readouterr().err
    said = re.fullmatch(r"note: the validation perplexity rose from ([0-9.]+) \(epoch (\d+)\) to ([0-9.]+) "
                        r"\(epoch 40\) while the training text's fell from ([0-9.]+) to ([0-9.]+): the model is "
                        r"overfitting its text; best.npz keeps the weights of the best validation, which generate and "
                        r"evaluate read, and more --dropout, a smaller --hidden or more text hold it off\n", err)
    assert said, err
    best, at, last, then, now = map(float, said.groups())
    assert last > 3 * best and now < then / 3 and at < 20
    assert best == round(load_checkpoint(tmp_path / "run" / "best.npz")[1]["best_val"], 2)

    def row(epoch, train, val):
        return dict(epoch=epoch, train_perplexity=train, val_perplexity=val)
    turned = [row(1, 9.0, 8.0), row(2, 7.0, 6.0), *(row(e, 6.0 - e / 10, 6.5) for e in range(3, 8))]
    assert cli.overfitting_note(turned).startswith("note: the validation perplexity rose from 6.00 (epoch 2) to 6.50 "
                                                   "(epoch 7) while the training text's fell from 7.00 to 5.30: ")
    for history in (turned[:-1],                                              # its best 4 epochs back: not yet
                    [*turned[:-1], row(7, 5.3, 6.1)],                         # risen 1.7%: noise
                    [*turned[:-1], row(7, 7.5, 6.5)],                         # the training's rose too
                    [row(e, 5.0, None) for e in range(1, 20)], []):           # no validation
        assert cli.overfitting_note(history) is None


def test_patience_stops_a_run_whose_validation_no_longer_betters_and_a_resume_honours_it(tmp_path, capsys):
    """--patience N: the run stops, saved, at the validation N validations after its best (each epoch's closing one,
    and inside the epochs --validate-every-steps's), best.npz keeping the best's weights, with a line saying so and
    how to train on; a resume with the same patience trains nothing more and says why; --patience 0 (a resume honours
    it) trains on; without a validation text it is refused in one line."""
    import csv
    import random
    rng = random.Random(0)
    text = tmp_path / "random.txt"
    text.write_text("".join(rng.choice("abcdefghij") for _ in range(3000)))
    out = tmp_path / "run"
    flags = ["--corpus", str(text), "--out", str(out), "--epochs", "40", "--hidden", "128", "--layers", "1",
             "--dropout", "0", "--lr", "0.01", "--batch-size", "8", "--num-steps", "20", "--device", "cpu",
             "--charset", "raw"]
    cli.main(["train", *flags, "--patience", "3"])
    said = capsys.readouterr().out
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val = [float(row["val_perplexity"]) for row in rows]
    best = int(np.argmin(val)) + 1
    assert len(rows) == best + 3 < 40 and min(val[best:]) >= val[best - 1]
    line = (f"the validation perplexity has not bettered its best, {val[best - 1]:.2f} at epoch {best}, in the 3 "
            f"validations since (--patience 3); best.npz keeps the weights of the best validation; to train on: "
            f"scratchrnn train --resume {out} --patience 0\n")
    assert f"stopped: {line}" in said
    assert load_checkpoint(out / "last.npz")[1]["epoch"] == best + 3
    assert load_checkpoint(out / "best.npz")[1]["epoch"] == best
    before = weights(out)[0]
    cli.main(["train", "--resume", str(out)])
    assert capsys.readouterr().out == f"{out} stopped after epoch {best + 3}: {line}"
    assert all(np.array_equal(before[k], weights(out)[0][k]) for k in before)
    cli.main(["train", "--resume", str(out), "--patience", "0", "--epochs", str(best + 5)])
    assert load_checkpoint(out / "last.npz")[1]["epoch"] == best + 5
    # inside the epochs: a validation every 4 of an epoch's 16 minibatches; the run stops, saved, at the one
    inside = tmp_path / "inside"
    cli.main(["train", *flags[:2], "--out", str(inside), *flags[4:], "--patience", "5", "--validate-every-steps", "4"])
    said = capsys.readouterr().out
    stopped = re.search(r"stopped: the validation perplexity has not bettered its best, [0-9.]+ at epoch \d+(, "
                        r"minibatch [0-9,]+)?, in the 5 validations since \(--patience 5\); ", said)
    assert stopped, said
    manifest = load_checkpoint(inside / "last.npz")[1]
    assert manifest["batch"] % 4 == 0 and 0 < manifest["batch"] < 16                   # inside an epoch
    cli.main(["train", "--resume", str(inside)])
    assert capsys.readouterr().out.startswith(f"{inside} stopped at epoch {manifest['epoch'] + 1}, minibatch "
                                              f"{manifest['batch']}: the validation perplexity has not bettered")
    with pytest.raises(SystemExit):
        cli.main(["train", *flags[:2], "--out", str(tmp_path / "none"), "--val-fraction", "0", "--patience", "2"])
    assert capsys.readouterr().err == ("error: --patience watches the validation perplexity, and --val-fraction 0 "
                                       "holds none out\n")

    def row(epoch, val):
        return dict(epoch=epoch, train_perplexity=5.0, val_perplexity=val)

    def step(epoch, minibatch, val):
        return dict(epoch=epoch, minibatch=minibatch, val_perplexity=val)
    history = [row(1, 8.0), row(2, 6.0), row(3, 6.0), row(4, 7.0)]             # the first of equal bests counts
    assert cli.out_of_patience(history, [], 2, "CMD").startswith("the validation perplexity has not bettered its "
                                                                 "best, 6.00 at epoch 2, in the 2 validations since "
                                                                 "(--patience 2)")
    assert cli.out_of_patience(history, [], 3, "CMD") is None and cli.out_of_patience(history, [], None, "CMD") is None
    assert cli.out_of_patience([row(1, None)], [], 1, "CMD") is None
    steps = [step(3, 100, 5.0), step(3, 200, None), step(4, 100, 6.5), step(5, 100, 6.6)]    # in epochs 3 to 5
    assert cli.out_of_patience(history, steps, 2, "CMD").startswith("the validation perplexity has not bettered its "
                                                                    "best, 5.00 at epoch 3, minibatch 100, in the 4 "
                                                                    "validations since")
    assert cli.out_of_patience(history, steps, 5, "CMD") is None


def test_ctrl_c_while_the_command_loads_is_one_line(tmp_path):
    """A Ctrl-C in the command's first half second, while it loads NumPy and Numba, was a traceback from inside their
    imports (the `scratchrnn` script imported scratchrnn.cli before any of our code ran). `import scratchrnn` now
    loads neither (its names come when first asked for), and the command's entry point, __main__.main (launch's),
    catches it around the import of the rest: one line, exit status 130; the book's examples too (launch.book_example;
    they imported scratchrnn.book at their top), and the exercises and late_plateaus.py, which import under
    launch.loading (a traceback before). The Ctrl-C is delivered here where NumPy is imported."""
    script = ("import sys\n"
              "class CtrlC:\n"
              "    def find_spec(self, name, path=None, target=None):\n"
              "        if name == 'numpy':\n"
              "            raise KeyboardInterrupt\n"
              "import scratchrnn\n"
              "assert 'numpy' not in sys.modules and 'numba' not in sys.modules, 'import scratchrnn loaded them'\n"
              "sys.meta_path.insert(0, CtrlC())\n"
              "from scratchrnn.__main__ import main\n"
              "sys.argv = ['scratchrnn', 'generate']\n"
              "main()\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (cli.EXIT_INTERRUPTED, "interrupted\n")
    # the book's examples (python examples/train_deep_lstm.py: the headline command) load as the command does
    examples = Path(__file__).resolve().parents[1] / "examples"
    programs = ["train_deep_lstm.py", "train_rnn_scratch.py", "late_plateaus.py"]
    programs += [f"exercises/{path.name}" for path in sorted((examples / "exercises").glob("*.py"))]
    assert len(programs) == 12
    for example in programs:
        run = script.split("from scratchrnn.__main__")[0] + f"import runpy\nsys.argv = ['{example}']\n" + \
            f"runpy.run_path({str(examples / example)!r}, run_name='__main__')\n"
        r = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert (r.returncode, r.stderr) == (cli.EXIT_INTERRUPTED, "interrupted\n"), example
    from scratchrnn import RNNLM, ScratchRNNError, load_corpus         # the names of `scratchrnn`, as before
    from scratchrnn.errors import ScratchRNNError as error
    assert RNNLM.__name__ == "RNNLM" and ScratchRNNError is error and callable(load_corpus)
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        import scratchrnn
        scratchrnn.nothing


def test_ctrl_c_saves_and_resume_is_exact(tmp_path):
    """SIGINT in the middle of training: a checkpoint with the position inside the epoch, a message on
    how to resume, exit 130; resuming ends with exactly the weights of an uninterrupted run."""
    args = ["--hidden", "96", "--layers", "2", "--engine", "reference", "--batch-size", "16", "--num-steps", "20",
            "--device", "cpu", "--log-every", "1", "--epochs", "6"]
    out = tmp_path / "stopped"
    with running("train", "--out", str(out), *args) as proc:
        read_until(proc.stdout, "epoch    1")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted (SIGINT): saved" in err and f"scratchrnn train --resume {out}" in err and "Traceback" not in err
    _, manifest = weights(out)
    assert 1 <= manifest["epoch"] < 6
    r = scratchrnn("train", "--resume", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    full = tmp_path / "full"
    assert scratchrnn("train", "--out", str(full), *args).returncode == 0
    a, _ = weights(out)
    b, _ = weights(full)
    assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("saved", [True, False])
def test_a_second_ctrl_c_leaves_at_once_and_says_what_is_kept(tmp_path, monkeypatch, capsys, saved):
    """A second Ctrl-C leaves without saving (the first asks for a save at the minibatch's end, which may take a
    while); it said only "interrupted", and left the user to find out whether the run was lost. The line says which
    last.npz is kept and how to resume, or that none had been written; exit status 130."""
    real = cli.train_epoch

    def twice_at_minibatch_5(*args, on_step, **kwargs):
        def step(pos, grad_norm):
            if pos.batch == 5:
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            on_step(pos, grad_norm)
        return real(*args, on_step=step, **kwargs)
    monkeypatch.setattr(cli, "train_epoch", twice_at_minibatch_5)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", str(out), "--epochs", "2", *SMALL, *(["--save-every-steps", "2"] if saved else [])])
    kept = (f"the run's last.npz (at epoch 1, minibatch 4) is kept; resume with: scratchrnn train --resume {out}"
            if saved else "no checkpoint had been written")
    said = capsys.readouterr().err
    assert e.value.code == 130 and said == f"interrupted again (SIGINT): left without saving; {kept}\n"
    assert (out / "last.npz").exists() == saved


@pytest.mark.parametrize("where", ["inside the epoch", "at its end"])
def test_ctrl_c_during_a_validation_stops_it_and_resume_is_exact(tmp_path, monkeypatch, capsys, where):
    """A pass over a validation text of millions of tokens takes minutes, and a Ctrl-C waited for its end (a second
    one left without saving). It stops the pass at its next chunk: inside the epoch (--validate-every-steps) the run
    is saved where it stands; at the epoch's end, at its last minibatch. Either way the resume does the validation
    that was cut first (inside the epoch it was not done again: its row of steps.csv was missing) and ends with the
    weights, the history and the rows of a run never interrupted."""
    inside = ["--validate-every-steps", "7"] if where == "inside the epoch" else []
    flags = ["--epochs", "2", *SMALL, *inside]
    cli.main(["train", "--out", str(tmp_path / "whole"), *flags])
    real, asked = cli.evaluate, []

    def evaluate(model, corpus, batch_size, num_steps, interrupted=None):
        def ask():
            asked.append(1)
            if len(asked) == 3:                                   # a Ctrl-C in the middle of the first validation
                os.kill(os.getpid(), signal.SIGINT)
            return interrupted()
        return real(model, corpus, batch_size, num_steps, interrupted=ask)
    monkeypatch.setattr(cli, "evaluate", evaluate)
    cut = tmp_path / "cut"
    with pytest.raises(SystemExit) as left:
        cli.main(["train", "--out", str(cut), *flags])
    assert left.value.code == 130 and len(asked) == 3
    _, manifest = weights(cut)
    assert manifest["epoch"] == 0 and manifest["history"] == []
    assert manifest["batch"] == 7 if where == "inside the epoch" else manifest["batch"] > 7
    assert (f"interrupted (SIGINT): saved {cut / 'last.npz'} at epoch 1, minibatch {manifest['batch']}; "
            f"resume with: scratchrnn train --resume {cut}") in capsys.readouterr().err
    monkeypatch.setattr(cli, "evaluate", real)
    cli.main(["train", "--resume", str(cut), "--device", "cpu"])
    # the validation that was cut inside the epoch is done first on the resume (its row of steps.csv was missing)
    assert weights(cut)[1]["steps"] == weights(tmp_path / "whole")[1]["steps"]
    resumed = capsys.readouterr().out.splitlines()
    assert bool(inside) == resumed[2].startswith("epoch    1  minibatch 7/") and "validation" in resumed[2]
    for name in ("last.npz", "best.npz"):
        (a, ma), (b, mb) = weights(tmp_path / "whole", name), weights(cut, name)
        assert all(np.array_equal(a[k], b[k]) for k in a), name
        assert [(h["train_perplexity"], h["val_perplexity"]) for h in ma["history"]] == \
            [(h["train_perplexity"], h["val_perplexity"]) for h in mb["history"]]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_runs_files_have_the_mode_the_umask_gives(tmp_path, umask, mode):
    """Every file of a run was 0600 whatever the umask (mkstemp's mode, kept by the rename): another user of the
    machine (a colleague, a web server) could not read a run that the user's umask shares. They are 0666 less the
    umask now, as any file open() creates."""
    out = tmp_path / "run"
    r = scratchrnn("train", "--out", str(out), "--epochs", "1", *SMALL, "--plot", umask=umask)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["best.npz", "last.npz", "metrics.csv", "perplexity.png"]
    assert {name: oct(stat.S_IMODE((out / name).stat().st_mode)) for name in files} == dict.fromkeys(files, oct(mode))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.arange(5.0)}, {"epoch": 1})
    calls = {"n": 0}
    real = np.lib.format.write_array

    def dies_midway(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", dies_midway)
    with pytest.raises(CheckpointError, match=r"cannot write .*c\.npz.* \(disk full\); the one written before is kept"):
        save_checkpoint(path, {"w": np.zeros(5), "v": np.ones(3)}, {"epoch": 2})
    arrays, manifest = load_checkpoint(path)
    assert manifest["epoch"] == 1 and np.array_equal(arrays["w"], np.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    with pytest.raises(CheckpointError, match="its folder .*gone.* is gone"):
        save_checkpoint(tmp_path / "gone" / "c.npz", {"w": np.zeros(5)}, {"epoch": 1})   # its folder does not exist
    (tmp_path / "empty").mkdir()
    calls["n"] = 0                                                 # (its second array fails again)
    with pytest.raises(CheckpointError, match="none had been written yet"):
        save_checkpoint(tmp_path / "empty" / "c.npz", {"w": np.zeros(5), "v": np.ones(3)}, {"epoch": 1})


def test_a_checkpoint_that_cannot_be_read_is_not_called_corrupted(tmp_path, monkeypatch, trained):
    """Another account's run (no read permission, tried as nobody) was "truncated or corrupted ([Errno 13] ...)"."""
    import zipfile

    from scratchrnn.checkpoint import read_npz

    def refused(path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(zipfile, "ZipFile", refused)
    for read, what in ((load_checkpoint, "checkpoint"), (read_npz, "weights file")):
        with pytest.raises(CheckpointError) as e:
            read(trained / "last.npz")
        assert str(e.value) == f"{what} {str(trained / 'last.npz')!r} cannot be read (Permission denied)"


def test_a_run_folder_removed_during_training_is_one_line_that_claims_nothing_kept(tmp_path, monkeypatch, capsys):
    """`rm -rf` of the run's folder while it trains: the next checkpoint cannot be written, and the line said "none
    had been written yet; the run's last.npz (after epoch 1) is kept", neither true. Now it says the folder is gone."""
    import shutil
    out, calls, train_epoch = tmp_path / "run", [], cli.train_epoch

    def removed_before_epoch_2(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            shutil.rmtree(out)
        return train_epoch(*a, **k)
    monkeypatch.setattr(cli, "train_epoch", removed_before_epoch_2)
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", str(out), "--epochs", "3", *SMALL])
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and f"its folder {str(out)!r} is gone" in err, err
    assert "kept" not in err and err.count("\n") == 1


def test_a_full_disk_during_training_is_one_line_and_the_last_checkpoint_resumes(tmp_path, monkeypatch, capsys):
    """No space left on device when epoch 2's checkpoints are written: one line, exit status 2, no temporary file
    left, and the last.npz of epoch 1 resumes; the line says so, and how (it said only which file was kept)."""
    out = tmp_path / "run"
    real, calls = np.lib.format.write_array, {"n": 0, "full_after": None}

    def counted(*a, **k):                                  # every array of every checkpoint the run writes
        calls["n"] += 1
        if calls["full_after"] is not None and calls["n"] > calls["full_after"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*a, **k)

    monkeypatch.setattr(np.lib.format, "write_array", counted)
    cli.main(["train", "--out", str(tmp_path / "probe"), "--epochs", "1", *SMALL])
    calls.update(full_after=calls["n"], n=0)               # the disk is full once epoch 1's writes are done
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--out", str(out), "--epochs", "3", *SMALL])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1
    assert err[0].startswith("error: cannot write") and "No space left on device" in err[0]
    assert err[0].endswith(f"; the run's last.npz (after epoch 1) is kept: once the file can be written, resume with: "
                           f"scratchrnn train --resume {out}")
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    monkeypatch.undo()
    assert load_checkpoint(out / "last.npz")[1]["epoch"] == 1
    cli.main(["train", "--resume", str(out), "--epochs", "2"])
    assert load_checkpoint(out / "last.npz")[1]["epoch"] == 2


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "2", *SMALL])
    good, _ = weights(out)
    from scratchrnn.model import RNNLM
    real = RNNLM.update

    def explode(self, optimizer, lr, theta):
        self.flat_grads[...] = np.nan
        return real(self, optimizer, lr, None)

    monkeypatch.setattr(RNNLM, "update", explode)
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--resume", str(out), "--epochs", "4", "--device", "cpu"])
    assert e.value.code == cli.EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "training diverged" in err and "last good checkpoint" in err
    after, manifest = weights(out)
    assert manifest["epoch"] == 2 and all(np.array_equal(good[k], after[k]) for k in good)


@pytest.mark.parametrize("flag, stop, needle", [
    ("--save-every-steps", 5, "the weights became NaN or infinite"),       # caught writing the checkpoint
    ("--log-every-steps", 6, "the mean loss became nan at minibatch 6"),   # caught reading the loss for the line
])
def test_a_run_that_diverges_inside_an_epoch_stops_there(tmp_path, monkeypatch, capsys, flag, stop, needle):
    """--save-every-steps wrote the NaN weights of a run that had diverged over last.npz (and said that the last good
    checkpoint was kept), and every run went on to its epoch's end before it looked (38 minutes of a 56 MiB text). It
    stops at the first minibatch where the loss is read (a checkpoint, a log line or a validation is due, or 10 s have
    passed) or its weights are written, and keeps the last good checkpoint."""
    from scratchrnn.model import RNNLM
    real, updates = RNNLM.update, []

    def explode_at_the_fifth(self, optimizer, lr, theta):
        updates.append(1)
        if len(updates) == 5:
            self.flat_grads[...] = np.nan
            return real(self, optimizer, lr, None)
        return real(self, optimizer, lr, theta)
    monkeypatch.setattr(RNNLM, "update", explode_at_the_fifth)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", str(out), "--epochs", "1", flag, "1", *SMALL])
    assert e.value.code == cli.EXIT_DIVERGED and len(updates) == stop
    err = capsys.readouterr().err
    assert needle in err and "(epoch 1)" in err
    if flag == "--save-every-steps":
        kept, manifest = weights(out)
        assert manifest["batch"] == 4 and all(np.isfinite(a).all() for a in kept.values())
        assert "the last good checkpoint" in err
    else:
        assert not (out / "last.npz").exists() and "no checkpoint had been written yet" in err


def test_nan_weights_found_writing_a_stops_checkpoint_are_a_divergence(tmp_path, monkeypatch, capsys):
    """The checkpoint of a stop (--max-minutes here; a Ctrl-C's alike) that finds the weights NaN is the divergence's
    line and exit status 3, as inside the epoch (it was status 2)."""
    from scratchrnn.model import RNNLM
    real = RNNLM.update

    def explode(self, optimizer, lr, theta):
        self.flat_grads[...] = np.nan
        return real(self, optimizer, lr, None)
    monkeypatch.setattr(RNNLM, "update", explode)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--out", str(out), "--epochs", "1", "--max-minutes", "0.00001", *SMALL])
    assert e.value.code == cli.EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "the weights became NaN or infinite" in err and "(epoch 1); no checkpoint had been written yet" in err
    assert not (out / "last.npz").exists()


def test_a_budget_spent_at_a_validation_inside_the_epoch_does_not_validate_again(tmp_path, monkeypatch, capsys):
    """--max-minutes ends as a run ends, with a validation; where the budget ran out at a --validate-every-steps
    validation (here its minibatch 1), the same weights were validated again: on a 56 MiB text, 104 s more past
    the budget for the value just printed. Now that value is the stop's."""
    real, passes = cli.evaluate, []
    monkeypatch.setattr(cli, "evaluate", lambda *a, **k: (passes.append(1), real(*a, **k))[1])
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", "--max-minutes", "0.00001", "--validate-every-steps", "1",
              *SMALL])
    lines = capsys.readouterr().out.splitlines()
    assert len(passes) == 1 and "stopped: the --max-minutes 1e-05 budget is spent, at epoch 1, minibatch 1" in lines[2]
    shown = float(lines[1].split("validation perplexity")[1].split()[0])
    assert weights(out)[1]["best_val"] == pytest.approx(shown, abs=0.006) and (out / "best.npz").exists()


def slow_clock(monkeypatch, validation_s=100.0, minibatch_s=0.0, writes_s=0.0, checkpoint_s=0.0):
    """perf_counter, shifted as if each validation took validation_s, each minibatch minibatch_s (on_step's time,
    which the epoch's tokens/s leaves out), each write of a run's metrics writes_s and of a checkpoint checkpoint_s;
    returns the clock and the list of validations done."""
    import time as clock
    real, shift, passes = clock.perf_counter, {"s": 0.0}, []
    monkeypatch.setattr(clock, "perf_counter", lambda: real() + shift["s"])
    evaluate, train_epoch = cli.evaluate, cli.train_epoch

    def slow(*a, **k):
        passes.append(1)
        shift["s"] += validation_s
        return evaluate(*a, **k)

    def slow_minibatches(*a, on_step, **k):
        def step(*b):
            shift["s"] += minibatch_s
            return on_step(*b)
        return train_epoch(*a, on_step=step, **k)
    write_metrics = cli.write_metrics

    def slow_writes(*a, **k):
        shift["s"] += writes_s
        return write_metrics(*a, **k)
    monkeypatch.setattr(cli, "evaluate", slow)
    monkeypatch.setattr(cli, "train_epoch", slow_minibatches)
    monkeypatch.setattr(cli, "write_metrics", slow_writes)
    save_run = cli.save_run

    def slow_checkpoint(*a, **k):
        shift["s"] += checkpoint_s
        return save_run(*a, **k)
    monkeypatch.setattr(cli, "save_run", slow_checkpoint)
    return clock.perf_counter, passes


def test_a_budget_leaves_time_for_its_closing_validation(tmp_path, monkeypatch, capsys):
    """--max-minutes ends as a run ends, with a validation, which took its whole time past the budget (93-104 s on a
    56 MiB text). The run now stops where that validation, as long as the last one, would end past M minutes. Here a
    clock on which each validation takes 100 s, and a 3-minute budget: the first epoch's validation ends at 100 s,
    and another would not fit, so the run ends there, after epoch 1 (it went on to 300 s: epoch 2, its validation,
    epoch 3's first minibatch, then the closing one; then to 200 s, epoch 2's first minibatch and a validation)."""
    clock, passes = slow_clock(monkeypatch)
    began = clock()
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "10", "--max-minutes", "3", *SMALL])
    assert clock() - began < 100 + 30 and len(passes) == 1
    assert "stopped: the --max-minutes 3 budget is spent, after epoch 1;" in capsys.readouterr().out
    assert weights(tmp_path / "run")[1]["epoch"] == 1
    # a validation inside the epoch after which another would not fit: the run ends there, with its value (it went
    # on a minibatch and validated again; a 56 MiB text ended at 255 s of a 3-minute budget)
    passes.clear()
    began = clock()
    cli.main(["train", "--out", str(tmp_path / "inside"), "--epochs", "10", "--max-minutes", "3",
              "--validate-every-steps", "5", *SMALL])
    assert clock() - began < 100 + 30 and len(passes) == 1
    assert "stopped: the --max-minutes 3 budget is spent, at epoch 1, minibatch 5;" in capsys.readouterr().out
    # a validation that takes the whole budget: none is kept room for (each of a series of 90 s resumes stopped at
    # its first minibatch and validated, past the budget, a minibatch a job); the run trains its epoch, validates it
    # as every epoch is, and stops there
    passes.clear()
    began = clock()
    cli.main(["train", "--resume", str(tmp_path / "run"), "--max-minutes", "1.5"])
    assert clock() - began < 100 + 30 and len(passes) == 1
    assert "stopped: the --max-minutes 1.5 budget is spent, after epoch 2;" in capsys.readouterr().out


def test_a_budget_leaves_room_for_a_validation_the_run_has_not_timed_yet(tmp_path, monkeypatch, capsys):
    """A long text's first epoch has no validation to time (without --validate-every-steps), and --max-minutes left
    it no room: it stopped once the budget had passed, and validated past it. The closing validation is now
    expected from the training's speed past its first minibatch (cli.expected_validation_s, over the latest
    SPEED_WINDOW_S: the epoch's own counts the first's warm-up): here 100 s, each minibatch 30 s, and 4 minutes;
    the run stops after minibatch 5 (150 s, + 100 s), where it went on to minibatch 9 (270 s, + 100 s)."""
    clock, passes = slow_clock(monkeypatch, minibatch_s=30.0)
    monkeypatch.setattr(cli, "expected_validation_s", lambda *a: 100.0)
    monkeypatch.setattr(cli, "SPEED_WINDOW_S", 0.0)              # (a speed from the second minibatch on)
    began = clock()
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--max-minutes", "4", *SMALL])
    assert clock() - began < 250 + 30 and len(passes) == 1
    assert "stopped: the --max-minutes 4 budget is spent, at epoch 1, minibatch 5;" in capsys.readouterr().out
    # a resume counts the run's last validation, kept in its checkpoint (100 s; its estimate here would be a few ms)
    monkeypatch.setattr(cli, "expected_validation_s", lambda *a: 0.001)
    passes.clear()
    began = clock()
    cli.main(["train", "--resume", str(tmp_path / "run"), "--max-minutes", "4"])
    assert clock() - began < 250 + 30 and len(passes) == 1
    assert "stopped: the --max-minutes 4 budget is spent, at epoch 1, minibatch 10;" in capsys.readouterr().out
    # one longer than the budget is left out: the run trains to the budget (4 minibatches, 120 s > 96 s)
    passes.clear()
    cli.main(["train", "--resume", str(tmp_path / "run"), "--max-minutes", "1.6"])
    assert len(passes) == 0 and ("stopped: the --max-minutes 1.6 budget is spent, at epoch 1, minibatch 14 (without "
                                 "its closing validation: one takes about 100 s, longer than the budget);"
                                 ) in capsys.readouterr().out
    # a new run whose validation is longer than its budget has done none: no best.npz, and the last line names none
    monkeypatch.setattr(cli, "expected_validation_s", lambda *a: 100.0)
    cli.main(["train", "--out", str(tmp_path / "new"), "--epochs", "1", "--max-minutes", "1.6", *SMALL])
    out = capsys.readouterr().out
    assert "minibatch 4 (without its closing validation" in out and not (tmp_path / "new" / "best.npz").exists()
    assert f"checkpoints: {tmp_path / 'new' / 'last.npz'}; metrics:" in out
    # the estimate: the validation text's tokens at 2.5 times the training's tokens/s (none before there is a speed)
    monkeypatch.undo()
    assert cli.expected_validation_s(250_000, 10_000.0) == pytest.approx(10.0)
    assert cli.expected_validation_s(250_000, None) == 0.0


def test_a_budget_counts_from_the_start_and_keeps_room_for_its_closing_writes(tmp_path, monkeypatch, capsys):
    """--max-minutes counted from the training's start, not the process's, and kept no room for the files a stop
    writes nor for the minibatch it goes on to: a 1-minute budget ended at 60.9 s (the Time Machine; 61.2 s on a 56
    MiB text). It counts from the process's start now (cli.main's `started`, launch.main's time before its imports),
    and keeps room for the next minibatch and the closing writes, as long as the latest. Here each write of the
    run's files takes 40 s, and a 2-minute budget: epoch 2's end, at 41 s, stops the run (its files written at 81 s,
    another epoch's and a stop's would end at 122 s), where it went on to epoch 4's first minibatch and ended at 163
    s. The writes' time is kept in the checkpoint, for a resume."""
    clock, _ = slow_clock(monkeypatch, validation_s=0.0, writes_s=40.0)
    began = clock()
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "10", "--max-minutes", "2", "--val-fraction", "0",
              *SMALL])
    assert clock() - began < 120
    assert "stopped: the --max-minutes 2 budget is spent, after epoch 2;" in capsys.readouterr().out
    # a resume keeps room for the writes its run timed (kept in the checkpoint), before it has written: a minute
    # stops after epoch 3, its files written at 40 s (it went on to epoch 4's first minibatch, and ended at 80 s)
    began = clock()
    cli.main(["train", "--resume", str(tmp_path / "run"), "--max-minutes", "1"])
    assert clock() - began < 60
    assert "stopped: the --max-minutes 1 budget is spent, after epoch 3;" in capsys.readouterr().out
    # a process that began 59.999 s ago (its imports, a long text read) has a millisecond left of a 1-minute budget
    cli.main(["train", "--out", str(tmp_path / "late"), "--epochs", "10", "--max-minutes", "1", *SMALL],
             started=clock() - 59.999)
    out = capsys.readouterr().out
    assert "stopped: the --max-minutes 1 budget is spent, at epoch 1, minibatch 1" in out, out
    # the command's entry point gives cli.main the time it began, before it imported the rest
    from scratchrnn import launch
    given = {}
    monkeypatch.setattr(cli, "main", lambda **k: given.update(k))
    before = clock()
    launch.main()
    assert before <= given["started"] <= clock()


def test_a_budget_keeps_room_for_a_checkpoint_timed_inside_the_first_epoch(tmp_path, monkeypatch, capsys):
    """Inside a run's first epoch its closing writes are not yet timed; a --save-every-steps checkpoint is a first
    estimate of them. Each checkpoint takes 30 s here, one every minibatch, and a 1-minute budget: the first, at
    30 s, leaves room for the stop's own (at 60 s), where the run went on to a second and ended at 90 s."""
    clock, _ = slow_clock(monkeypatch, validation_s=0.0, checkpoint_s=30.0)
    began = clock()
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--max-minutes", "1", "--val-fraction", "0",
              "--save-every-steps", "1", *SMALL])
    assert clock() - began < 61
    assert "stopped: the --max-minutes 1 budget is spent, at epoch 1, minibatch 1;" in capsys.readouterr().out


def test_the_commands_a_line_suggests_can_be_pasted_into_a_shell(tmp_path, capsys):
    """'resume with: scratchrnn train --resume runs/my book' split into two arguments when pasted; paths in the
    commands the lines suggest are quoted for the shell where they need to be (errors.quoted): in the lines of
    train and resume, and in those of the text (a compressed one, a folder given as --corpus)."""
    import gzip
    import shlex
    out = tmp_path / "my run, été"
    cli.main(["train", "--out", str(out), "--epochs", "2", "--max-minutes", "1e-5", *SMALL])
    suggested = capsys.readouterr().out.split("resume with: ")[1].splitlines()[0]
    assert suggested == f"scratchrnn train --resume '{out}'"
    cli.main(shlex.split(suggested)[1:])                          # as the shell gives it
    assert weights(out)[1]["epoch"] == 2
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", str(out), "--epochs", "2", *SMALL])
    assert f"continue it with --resume '{out}', start from its weights with --init-from '{out}' --out NEW" in \
        capsys.readouterr().err
    texts = tmp_path / "my texts"
    texts.mkdir()
    (texts / "book one.txt.gz").write_bytes(gzip.compress(b"the time machine " * 100))
    for corpus, suggested in ((texts / "book one.txt.gz", f"--corpus <(zcat '{texts / 'book one.txt.gz'}')"),
                              (texts, f"--corpus '{texts}'/*.txt")):
        with pytest.raises(SystemExit):
            cli.main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "o"), *SMALL])
        assert suggested in capsys.readouterr().err


def test_another_tools_flag_is_told_ours(capsys):
    """A person coming from char-rnn or torch-rnn types their flags (`-rnn_size 512 -seq_length 100`, `-primetext`)
    or ours with an underscore (`--batch_size`): each was "unrecognized arguments" alone. The line names ours."""
    from scratchrnn import book
    said = {("train", "-rnn_size", "512", "--batch_size", "8", "--grad_clip=5"):
            "here -rnn_size is --hidden, --batch_size is --batch-size, --grad_clip is --theta",
            ("train", "-seq_length", "100", "-gpuid", "0", "-data_dir", "d"):
            "here -seq_length is --num-steps, -gpuid is --device gpu, -data_dir is --corpus",
            ("generate", "-primetext", "The", "-length", "200", "-sample", "0"):
            "here -primetext is --prefix, -length is --length, -sample is --temperature"}
    for args, hint in said.items():
        with pytest.raises(SystemExit) as stop:
            cli.main(list(args))
        assert stop.value.code == 2
        assert capsys.readouterr().err == f"error: unrecognized arguments: {' '.join(args[1:])}; {hint} (see --help)\n"
    for parser, args in ((cli.build_parser(), ["train"]), (book.build_parser("", {}), [])):    # the examples' too
        with pytest.raises(SystemExit):
            parser.parse_args([*args, "--rnn_size", "4", "--wibble", "1"])
        assert capsys.readouterr().err == ("error: unrecognized arguments: --rnn_size 4 --wibble 1; here --rnn_size is "
                                           "--hidden (see --help)\n")
    with pytest.raises(SystemExit):                                 # generate has no --hidden: no hint
        cli.main(["generate", "--rnn_size", "4"])
    assert capsys.readouterr().err == "error: unrecognized arguments: --rnn_size 4 (see --help)\n"


def test_max_tokens_and_full_text_together_are_one_line(capsys):
    """`--max-tokens 500 --full-text` trained on the whole text without a word (the examples' default keeps 10,000
    tokens and train's the whole text, so a given --max-tokens could not be told from the default). Which was meant
    is asked; each alone is as before."""
    from scratchrnn import book
    from scratchrnn.cmdline import max_tokens_of
    for parser, args in ((cli.build_parser(), ["train"]), (book.build_parser("", {}), [])):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args([*args, "--max-tokens", "500", "--full-text"])
        assert stop.value.code == 2 and capsys.readouterr().err == (
            "error: argument --full-text: not allowed with argument --max-tokens (see --help)\n")
        assert max_tokens_of(parser.parse_args([*args, "--full-text"])) == -1
        assert max_tokens_of(parser.parse_args([*args, "--max-tokens", "500"])) == 500
    assert max_tokens_of(book.build_parser("", {}).parse_args([])) == 10_000


def test_a_path_whose_bytes_are_not_utf8_is_named_as_its_bytes_and_suggested_as_the_shell_reads_it(tmp_path):
    """A folder named in Latin-1 (b'caf\\xe9', an old archive's) trained, but the lines named it as the surrogate
    Python reads the byte as: "resume with: scratchrnn train --resume 'caf\\udce9'", which names another folder when
    pasted, and where standard output's encoding is strict (a UTF-8 locale that is not C) a note said that it
    "cannot write every character of the text". The suggested commands write such bytes in ANSI-C quoting
    ($'caf\\351', as `ls` does), which bash reads back to the same bytes, and the lines write the name's bytes as
    they are, as Python does in the C locale, with no note."""
    from scratchrnn.errors import quoted
    name = os.fsdecode(b"it's caf\xe9 \\ \xff")
    pasted = subprocess.run(["bash", "-c", "printf %s " + quoted(tmp_path / name)], capture_output=True, check=True)
    assert pasted.stdout == os.fsencode(tmp_path / name) and quoted("café") == "'café'"
    out = os.fsencode(tmp_path) + b"/run \xe9t\xe9"
    env = dict(os.environ, PYTHONIOENCODING="utf-8")                    # strict, as in an en_US.UTF-8 locale
    command = [sys.executable, "-m", "scratchrnn", "train", "--out", out, "--epochs", "1", *SMALL]
    first = subprocess.run(command, capture_output=True, env=env, timeout=600)
    assert first.returncode == 0 and first.stderr == b"" and b"writing to " + out + b"\n" in first.stdout
    again = subprocess.run(command, capture_output=True, env=env, timeout=600)
    assert again.returncode == 2 and again.stderr.startswith(b"error: " + out + b" already holds a run")
    suggested = re.search(rb"continue it with (--resume \S+ \S+),", again.stderr)[1]
    assert suggested == b"--resume $'" + os.fsencode(tmp_path) + b"/run \\351t\\351'"
    resumed = subprocess.run([b"bash", b"-c", b'"$@" ' + suggested + b" --epochs 2", b"bash", *command[:4]],
                             capture_output=True, env=env, timeout=600)
    assert resumed.returncode == 0 and b"epoch    2" in resumed.stdout, resumed.stderr


def test_a_path_in_quotes_starting_with_a_tilde_is_in_the_home_and_a_web_address_is_one_line(tmp_path, monkeypatch,
                                                                                              capsys):
    """`--out "~/my runs"` (in quotes, so the shell left ~ alone) made a folder named ~ in the current one, which a
    later `rm -rf ~` takes for the home; `--corpus "~/book.txt"` said "corpus '/cwd/~/book.txt' does not exist". A
    leading ~ of every path flag is the home now. `--corpus https://...` said "corpus '/cwd/https:/...' does not
    exist"; it says to download it first."""
    from scratchrnn import book
    from scratchrnn.data import load_corpus
    home = tmp_path / "home"
    (home / "texts").mkdir(parents=True)
    (home / "texts" / "a book.txt").write_text("the time machine by h g wells " * 60)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    cli.main(["train", "--corpus", "~/texts/a book.txt", "--out", "~/runs/one", "--epochs", "1", *SMALL])
    assert (home / "runs" / "one" / "last.npz").exists() and not (tmp_path / "~").exists()
    args = cli.build_parser().parse_args(["train", "--resume", "~/runs/one", "--init-from", "~/runs/one"])
    assert args.resume == args.init_from == str(home / "runs" / "one")
    assert cli.build_parser().parse_args(["generate", "--from", "~/r"]).from_dir == str(home / "r")
    assert book.build_parser("", {}).parse_args(["--save", "~/w.npz"]).save == str(home / "w.npz")
    url = "https://www.gutenberg.org/cache/epub/35/pg35.txt"
    said = (f"corpus '{url}' is a web address, and --corpus reads files: download it first (curl -L -o book.txt "
            f"{url}), then give --corpus book.txt")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["train", "--corpus", url, "--out", "o", *SMALL])
    assert capsys.readouterr().err == f"error: {said}\n" and not (tmp_path / "o").exists()
    with pytest.raises(DataError, match=re.escape(said)):
        load_corpus(url)


def test_a_corpus_pattern_the_shell_left_is_expanded_as_a_shell_would(tmp_path, capsys):
    """`--corpus "texts/*.txt"` (in quotes; Windows' shells expand no pattern) said "corpus 'texts/*.txt' does not
    exist". A pattern is expanded as a POSIX shell does, in sorted order, for train and the examples alike; one that
    matches nothing is one line; a file whose name looks like a pattern is read as named."""
    from scratchrnn import book
    texts = tmp_path / "texts"
    texts.mkdir()
    for name in ("b.txt", "a.txt", "notes.md", "odd[1].txt"):
        (texts / name).write_text(f"the time machine {name} " * 50)
    for parser, argv in ((cli.build_parser(), ["train"]), (book.build_parser("", {}), [])):
        args = parser.parse_args(argv + ["--corpus", str(texts / "*.txt"), "--corpus", str(texts / "odd[1].txt"), "-"])
        assert args.corpus == [str(texts / n) for n in ("a.txt", "b.txt", "odd[1].txt", "odd[1].txt")] + ["-"]
    cli.main(["train", "--corpus", str(texts / "[ab].txt"), "--out", str(tmp_path / "run"), "--epochs", "1", *SMALL])
    assert weights(tmp_path / "run")[1]["config"]["corpus"] == [str(texts / "a.txt"), str(texts / "b.txt")]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["train", "--corpus", str(texts / "*.rst"), "--out", str(tmp_path / "none")])
    assert capsys.readouterr().err == f"error: --corpus {texts / '*.rst'}: no file matches it (see --help)\n"


def test_gradcheck_prints_a_table():
    r = scratchrnn("gradcheck", "--cell", "lstm", "--layers", "2")
    assert r.returncode == 0, r.stderr
    assert "l1.W_hh" in r.stdout and "l0.C_0" in r.stdout and r.stdout.strip().endswith("pass (limit 1e-6)")


def test_help_of_every_command():
    """Every command's --help shows each option's default (also where the default is 0, or the option has no help
    text), never "(default: None)" or "(default: False)"."""
    helps = {}
    for cmd in ("train", "generate", "gradcheck", "diagnose", "selftest"):
        r = scratchrnn(cmd, "--help")
        assert r.returncode == 0 and "usage: scratchrnn " + cmd in r.stdout
        helps[cmd] = " ".join(r.stdout.split())
        assert "default: None" not in helps[cmd] and "default: False" not in helps[cmd], cmd
    for cmd, shown in [("train", "--hidden HIDDEN hidden units of each layer (default: 256)"),
                       ("train", "--seed SEED seeds the initial weights, the minibatches' order and the dropout masks "
                                 "(default: 0)"),
                       ("train", "--epochs EPOCHS passes over the training text (default: 500; with --resume, the "
                                 "run's own total)"),
                       ("train", "--dropout P drop each unit"),
                       ("train", "or the readable NumPy reference (default: fast)"),
                       ("train", "--num-steps NUM_STEPS time steps in a minibatch"),
                       ("generate", "--length LENGTH tokens to generate (default: 100)"),
                       ("gradcheck", "--vocab VOCAB size of the random data's vocabulary (default: 7)"),
                       ("diagnose", "--hidden HIDDEN hidden units of each layer (default: 128)")]:
        assert shown in helps[cmd], (cmd, shown)
    assert "(default: 0.4)" in helps["train"].split("--dropout P drop each unit", 1)[1].split("--threads N", 1)[0]
    assert "or auto (the GPU when CuPy finds one) (default: auto)" in helps["selftest"]


def test_several_corpora_and_word_tokens(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("the cat sat on the mat " * 40)
    b.write_text("the dog lay on the rug " * 40)
    out = tmp_path / "run"
    r = scratchrnn("train", "--out", str(out), "--corpus", str(a), "--corpus", str(b), "--tokens", "word",
                   "--epochs", "2", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--num-steps", "5",
                   "--device", "cpu")
    assert r.returncode == 0, r.stderr
    _, manifest = weights(out)
    assert {"cat", "dog", "rug"} <= set(manifest["vocab"])
    g = scratchrnn("generate", "--from", str(out), "--prefix", "the cat", "--length", "3")
    assert g.returncode == 0 and g.stdout.startswith("the cat ") and len(g.stdout.split()) == 5
    g = scratchrnn("generate", "--from", str(out), "--length", "4", "--seed", "1")      # no prefix: 4 words
    assert g.returncode == 0 and not g.stdout.startswith(" ") and len(g.stdout.split()) == 4, g.stdout
    assert set(g.stdout.split()) <= set(manifest["vocab"])
    for blanks in ("  ", "\n"):                # no word to warm up on: it said "must not be empty" of a prefix given
        one_line_error(scratchrnn("generate", "--from", str(out), "--prefix", blanks),
                       f"the prefix {blanks!r} has no words (a word model's words are what spaces and line breaks "
                       f"part)")
    # Several files after one --corpus, as a shell's glob gives them (--corpus texts/*.txt): the same run.
    r = scratchrnn("train", "--out", str(tmp_path / "globbed"), "--corpus", str(a), str(b), "--tokens", "word",
                   "--epochs", "2", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--num-steps", "5",
                   "--device", "cpu")
    assert r.returncode == 0, r.stderr
    globbed, globbed_manifest = weights(tmp_path / "globbed")
    assert globbed_manifest["config"]["corpus"] == manifest["config"]["corpus"] == [str(a), str(b)]
    assert all(np.array_equal(globbed[k], v) for k, v in weights(out)[0].items())
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "o"), "--corpus", str(tmp_path), "--device", "cpu"),
                   "is a folder, not a file", f"--corpus {tmp_path}/*.txt")


def test_generate_checkpoint_chooses_in_a_folder_and_a_file_given_is_not_overruled(trained, capsys):
    """--checkpoint chooses best.npz or last.npz of a run folder; with --from naming a file, `--from run/best.npz
    --checkpoint last` generated from best.npz without a word. A file that is the one asked for is taken."""
    def generate(*flags):
        cli.main(["generate", "--length", "12", "--seed", "1", "--temperature", "1", *flags])
        return capsys.readouterr().out
    assert generate("--from", str(trained), "--checkpoint", "last") == generate("--from", str(trained / "last.npz")) \
        == generate("--from", str(trained / "last.npz"), "--checkpoint", "last")
    assert generate("--from", str(trained), "--checkpoint", "best") == generate("--from", str(trained / "best.npz"))
    with pytest.raises(SystemExit):
        generate("--from", str(trained / "best.npz"), "--checkpoint", "last")
    assert capsys.readouterr().err == (f"error: --checkpoint last chooses among a run folder's checkpoints, and --from "
                                       f"names one file, {trained / 'best.npz'}: give its folder (--from {trained} "
                                       f"--checkpoint last) or leave --checkpoint out\n")


def test_generate_without_a_prefix_starts_from_a_drawn_token(trained):
    """As char-rnn without -primetext: the first token drawn uniformly (seeded), --length tokens in all."""
    _, manifest = weights(trained)
    runs = {seed: scratchrnn("generate", "--from", str(trained), "--length", "12", "--seed", str(seed))
            for seed in range(8)}
    for r in runs.values():
        assert r.returncode == 0, r.stderr
        assert len(r.stdout) == 13 and r.stdout.endswith("\n") and set(r.stdout[:-1]) <= set(manifest["vocab"])
    assert len({r.stdout[0] for r in runs.values()}) > 1                  # the start is drawn, not fixed
    again = scratchrnn("generate", "--from", str(trained), "--length", "12", "--seed", "3")
    assert again.stdout == runs[3].stdout
    empty = scratchrnn("generate", "--from", str(trained), "--prefix", "", "--length", "12", "--seed", "3")
    assert empty.stdout == runs[3].stdout


# ---------------------------------------------------------------------------------------------
# Bad input: one line, non-zero exit, no traceback, nothing lost
# ---------------------------------------------------------------------------------------------

def one_line_error(r, *needles):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", *SMALL])
    return out


@pytest.mark.parametrize("content, needle", [
    (None, "does not exist"), (b"", "is empty"), (b"\x00\x01\x02binary", "looks binary"),
    (b"\xff\xfe caf\xe9", "not UTF-8"), (b"too short", "too short for one minibatch"),
    (b"abcd " * 200, "corpus has 1,000 tokens, too short"),  # the whole text (it said 900)
])
def test_bad_corpus(tmp_path, content, needle):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "o"), "--corpus", str(path), "--device", "cpu"), needle)


@pytest.mark.parametrize("args, needle", [
    (["--hidden", "0"], "--hidden"), (["--layers", "-2"], "--layers"), (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "--lr"), (["--batch-size", "0"], "--batch-size"), (["--val-fraction", "1.5"], "--val-fraction"),
    (["--max-tokens", "-5"], "--max-tokens"), (["--epochs", "0"], "--epochs"), (["--theta", "0"], "--theta"),
    (["--engine", "auto"], "--engine: invalid choice: 'auto'"),
    (["--cell", "gru", "--nonlinearity", "relu"], "nonlinearity 'relu' is not one of the gru cell's: tanh"),
    (["--seed", "-1"], "--seed: expected a non-negative integer"),           # was NumPy's ValueError traceback
    (["--val-fraction", "0.999"], "to train on, too few for one minibatch"),  # was: 'corpus has 174 tokens'
    (["--val-fraction", "1e-6"], "--val-fraction 1e-06 holds out 0 of the corpus's 178,979 tokens"),  # was: none
])
def test_nonsense_hyperparameters(tmp_path, args, needle):
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "o"), "--device", "cpu", *args), needle)


def test_the_sizes_a_short_text_is_told_fit_it(tmp_path):
    """A text too short for train's 32 x 35 minibatch, or for it once --val-fraction holds a tenth out: the line
    names a --batch-size that fits the text left to train on, and a run with it trains (it said "smaller
    --batch-size/--num-steps"). diagnose, which reads the book's first 10,000 characters in 32 rows, names the
    longest --num-steps it takes (it named a --batch-size, which it has not)."""
    text = tmp_path / "short.txt"
    for length, said in ((1000, "corpus has 1,000 tokens, too short for one minibatch of 32 x 35 (needs at least "
                                "1,156); use a longer text, or --batch-size 24 (the most that fit at --num-steps 35)"),
                         (1200, "--val-fraction 0.1 holds out 120 of the corpus's 1,200 tokens, leaving 1,080 to "
                                "train on, too few for one minibatch of 32 x 35 (needs at least 1,156); lower "
                                "--val-fraction, or --batch-size 29 (the most that fit at --num-steps 35)")):
        text.write_text(("abcdefghij" * 200)[:length])
        common = ["--corpus", str(text), "--epochs", "1", "--hidden", "8", "--device", "cpu"]
        one_line_error(scratchrnn("train", "--out", str(tmp_path / "o"), *common), said)
        flags = re.search(r"--batch-size \d+", said).group().split()
        assert scratchrnn("train", "--out", str(tmp_path / f"fits{length}"), *common, *flags).returncode == 0
    one_line_error(scratchrnn("diagnose", "--num-steps", "304", "--out", str(tmp_path / "d")),
                   "--num-steps 304 is longer than the book's first 10,000 characters give in minibatches of 32 rows: "
                   "303 at the most")


@pytest.mark.parametrize("command", [["diagnose", "--theta", "0"], ["diagnose", "--num-steps", "1"],
                                     ["gradcheck", "--layers", "0"], ["selftest", "--device", "tpu"],
                                     ["diagnose", "--epochs", "-1"], ["diagnose", "--seed", "-3"],
                                     ["gradcheck", "--seed", "-1"]])
def test_every_subcommand_refuses_nonsense_in_one_line(tmp_path, command):
    one_line_error(scratchrnn(*command, *(["--out", str(tmp_path)] if command[0] == "diagnose" else [])))


def test_a_checkpoint_of_format_1_that_says_engine_auto_still_loads(tmp_path, trained):
    """Before the engines were two, a config could say engine 'auto' (which meant fast): it is read as fast."""
    arrays, manifest = load_checkpoint(trained / "last.npz")
    manifest["config"]["engine"] = "auto"
    save_checkpoint(tmp_path / "old.npz", arrays, manifest)
    r = scratchrnn("generate", "--from", str(tmp_path / "old.npz"), "--prefix", "the", "--length", "5")
    assert r.returncode == 0 and r.stdout.startswith("the"), r.stderr


def test_a_prefix_is_read_as_the_runs_text_was(trained):
    """A run trained on --charset book (letters only, lower case) saw no capital: `--prefix "The Time Traveller!"`
    was refused ("outside the vocabulary: '!T'"); it is read as the text was, 'the time traveller ', with a note
    saying so, and the output goes on from what the model read. Its ends are kept: 'the time ' goes on after its
    space (the charset strips a line's ends)."""
    r = scratchrnn("generate", "--from", str(trained), "--prefix", "The  Time Traveller!", "--length", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("the time traveller ") and len(r.stdout) == len("the time traveller ") + 5 + 1
    assert r.stderr == "note: the prefix is read as the run's text was (--charset book): 'the time traveller '\n"
    r = scratchrnn("generate", "--from", str(trained), "--prefix", "the time ", "--length", "5")
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("the time ") and len(r.stdout) == 9 + 5 + 1


def test_a_prefix_the_runs_charset_reads_as_nothing_says_so(trained):
    """A line break alone, read as --charset book's text was (letters and spaces), is nothing: it said "the prefix
    must not be empty", after a note that it was read as '', for a prefix that was not. One line says what the
    charset made of it."""
    r = scratchrnn("generate", "--from", str(trained), "--prefix", "\n", "--length", "5")
    one_line_error(r, "the prefix '\\n' has no characters once read as the run's text was (--charset book: '')",
                   "or no --prefix")
    assert r.stdout == ""


def test_a_manifest_without_its_keys_is_one_line(tmp_path, trained):
    arrays, manifest = load_checkpoint(trained / "last.npz")
    del manifest["loader_rng"]
    save_checkpoint(tmp_path / "partial.npz", arrays, manifest)
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "partial.npz"), "--prefix", "the"),
                   "has no 'loader_rng' in its manifest")


def test_prefix_outside_the_vocabulary(trained, tmp_path):
    """Checked before anything is printed: stdout stays empty (it held the prefix before)."""
    cli.main(["train", "--out", str(tmp_path / "raw"), "--epochs", "1", *SMALL, "--charset", "raw"])
    r = scratchrnn("generate", "--from", str(tmp_path / "raw"), "--prefix", "Hello{")
    one_line_error(r, "outside the vocabulary: '{'")
    assert r.stdout == ""
    for bad in (["--temperature", "-1"], ["--temperature", "nan"], ["--temperature", "inf"]):   # (inf: ">= 0" it is)
        r = scratchrnn("generate", "--from", str(trained), "--prefix", "the", *bad)
        one_line_error(r, "temperature must be a finite number >= 0")
        assert r.stdout == ""
    one_line_error(scratchrnn("generate", "--from", str(trained), "--temperature", "1", "--seed", "-1"), "--seed")
    r = scratchrnn("generate", "--from", str(trained), "--prefix", "the", "--top-k", "5")   # greedy: top-k did nothing
    one_line_error(r, "top-k 5 samples among the 5 most likely tokens", "give a temperature > 0")
    assert r.stdout == ""


def test_missing_truncated_and_corrupted_checkpoints(tmp_path, trained):
    wanted = "give a run folder (what train --out wrote) or a checkpoint .npz"
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "nothing"), "--prefix", "the"),
                   f"{tmp_path / 'nothing'} does not exist; {wanted}")
    (tmp_path / "book.txt").write_text("the time traveller\n")           # the text, where its run was meant
    for command in (["generate", "--from"], ["train", "--out", str(tmp_path / "new"), "--init-from"]):
        one_line_error(scratchrnn(*command, str(tmp_path / "book.txt")), f"book.txt is not a checkpoint; {wanted}")
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()                                          # a folder with no run in it
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "empty")), "empty holds no checkpoint")
    data = (trained / "last.npz").read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    one_line_error(scratchrnn("generate", "--from", str(cut), "--prefix", "the"), "truncated or corrupted")
    flipped = bytearray(data)
    middle = len(flipped) // 3
    flipped[middle:middle + 64] = bytes(64)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(flipped))
    one_line_error(scratchrnn("generate", "--from", str(bad), "--prefix", "the"), "corrupted")
    text = tmp_path / "text.npz"
    text.write_text("not a checkpoint")
    one_line_error(scratchrnn("generate", "--from", str(text), "--prefix", "the"), "corrupted")


def test_checkpoint_whose_shapes_do_not_match(tmp_path, trained):
    arrays, manifest = load_checkpoint(trained / "last.npz")
    manifest["config"]["hidden"] = 32
    save_checkpoint(tmp_path / "wrong.npz", arrays, manifest)
    one_line_error(scratchrnn("generate", "--from", str(tmp_path / "wrong.npz"), "--prefix", "the"),
                   "rnn.weight_ih_l0", "its manifest's model needs")


def test_resume_on_a_corpus_with_another_vocabulary(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcdefghij klmnopqrstuvwxyz " * 200)
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", "--corpus", str(corpus), *SMALL])
    corpus.write_text("aaaa bbbb " * 800)
    one_line_error(scratchrnn("train", "--resume", str(out), "--epochs", "2", "--device", "cpu"), "vocabulary",
                   f"changed since: {corpus.resolve()} (5,600 bytes then, 8,000 now)")


def test_resume_on_a_changed_text_with_the_same_vocabulary_is_refused(tmp_path):
    """The checkpoint keeps a digest of the corpus's ids: a text that changed (longer, or as long with other tokens)
    is refused in one line that names --init-from; the same text resumes. It resumed on any text with the same
    characters before, which is not the run it claims to continue. A checkpoint without the digest (written before
    it was kept) still resumes."""
    corpus, text = tmp_path / "c.txt", "the time traveller said " * 200
    corpus.write_text(text)
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", "--corpus", str(corpus), *SMALL, "--max-tokens", "-1"])
    resume = ["train", "--resume", str(out), "--epochs", "2", "--device", "cpu"]
    for changed, needle in ((text + "the time ", "4,799 tokens then, 4,808 now"),
                            (text.replace("time", "mite", 1), "4,799 tokens then and now, not the same ones")):
        corpus.write_text(changed)
        one_line_error(scratchrnn(*resume), "not the text this run was trained on", needle, f"--init-from {out}")
    corpus.write_text(text)
    assert scratchrnn(*resume).returncode == 0
    arrays, manifest = load_checkpoint(out / "last.npz")
    del manifest["corpus_digest"]
    save_checkpoint(out / "last.npz", arrays, manifest)
    corpus.write_text(text + "the time ")
    r = scratchrnn(*resume[:3], "--epochs", "3", "--device", "cpu")
    assert r.returncode == 0, r.stderr


def test_a_run_whose_text_has_moved_resumes_with_corpus_where_it_is_now(tmp_path):
    """A run folder copied to another machine, or a text moved to another folder: the run's text is not at the path
    its checkpoint keeps, and --corpus was refused on a resume ("contradicts the checkpoint"), so it could never be
    resumed. Now the missing text is one line naming --corpus; --corpus gives where the text is now, checked to be
    the same text (its digest), and the resume ends with the bits of a run never moved, and keeps the new place for
    the next one. Another text under --corpus is refused as a changed text is, naming the file."""
    texts = [tmp_path / "texts" / name for name in ("a.txt", "b.txt")]
    texts[0].parent.mkdir()
    for i, f in enumerate(texts):
        f.write_text(f"the time traveller {i} said so\n" * 60)
    flags = [*SMALL, "--max-tokens", "-1", "--charset", "raw"]
    cli.main(["train", "--out", str(tmp_path / "still"), "--epochs", "2", "--corpus", *map(str, texts), *flags])
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", "--corpus", *map(str, texts), *flags])
    texts[0].parent.rename(tmp_path / "moved")
    moved = [tmp_path / "moved" / f.name for f in texts]
    before = (out / "last.npz").read_bytes()
    r = scratchrnn("train", "--resume", str(out), "--epochs", "2")
    one_line_error(r, f"the run's text {texts[0]} is not there any more", f"--resume {out} --corpus PATH")
    assert (out / "last.npz").read_bytes() == before
    moved[1].write_text(moved[1].read_text().replace("said", "dias", 1))
    r = scratchrnn("train", "--resume", str(out), "--epochs", "2", "--corpus", *map(str, moved))
    one_line_error(r, "not the text this run was trained on", f"changed since: {moved[1]} (")
    assert str(moved[0]) not in r.stderr and (out / "last.npz").read_bytes() == before
    moved[1].write_text(moved[1].read_text().replace("dias", "said", 1))
    r = scratchrnn("train", "--resume", str(out), "--epochs", "2", "--corpus", *map(str, moved))
    assert r.returncode == 0, r.stderr
    a, ma = weights(tmp_path / "still")
    b, mb = weights(out)
    assert all(np.array_equal(a[k], b[k]) for k in a) and ma["history"][-1]["val_perplexity"] == \
        mb["history"][-1]["val_perplexity"]
    assert mb["config"]["corpus"] == [str(f) for f in moved]
    r = scratchrnn("train", "--resume", str(out), "--epochs", "3")     # the new place, kept
    assert r.returncode == 0, r.stderr


def test_a_resume_refused_for_a_changed_text_names_the_file_that_changed(tmp_path):
    """A run on several files keeps each file's digest beside the corpus's: the refusal names the file that changed
    (it could only say that the joined text had), and not the others. The same tokens from other bytes (Windows line
    breaks, read as \\n) are the same text: the run resumes. A checkpoint without the files' digests (written before
    they were kept) is refused as before, naming no file."""
    texts = {name: f"the {name} traveller said\n" * 120 for name in ("a", "b", "c")}
    files = [tmp_path / f"{name}.txt" for name in texts]
    for f, text in zip(files, texts.values()):
        f.write_text(text)
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", *sum((["--corpus", str(f)] for f in files), []), *SMALL,
              "--max-tokens", "-1", "--charset", "raw"])
    resume = ["train", "--resume", str(out), "--device", "cpu"]
    files[1].write_text(texts["b"].replace("said", "dias", 1))
    r = scratchrnn(*resume, "--epochs", "2")
    one_line_error(r, "not the text this run was trained on", "tokens then and now, not the same ones",
                   f"changed since: {files[1].resolve()} (2,520 bytes then and now)", f"--init-from {out}")
    assert str(files[0].resolve()) not in r.stderr and str(files[2].resolve()) not in r.stderr
    arrays, manifest = load_checkpoint(out / "last.npz")
    del manifest["corpus_files"]
    save_checkpoint(out / "old.npz", arrays, manifest)
    (out / "last.npz").replace(out / "new.npz")
    (out / "old.npz").replace(out / "last.npz")
    r = scratchrnn(*resume, "--epochs", "2")
    one_line_error(r, "not the text this run was trained on")
    assert "changed since" not in r.stderr
    (out / "new.npz").replace(out / "last.npz")
    files[1].write_text(texts["b"])
    files[2].write_bytes(texts["c"].replace("\n", "\r\n").encode())
    r = scratchrnn(*resume, "--epochs", "2")
    assert r.returncode == 0, r.stderr


def test_a_new_run_does_not_write_over_another(tmp_path):
    """--out holding a run is refused (its checkpoint untouched) unless --overwrite, which deletes the old run's
    files first: an old best.npz would otherwise be what generate reads beside the new run's last.npz."""
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "2", *SMALL])
    before = (out / "last.npz").read_bytes()
    one_line_error(scratchrnn("train", "--out", str(out), "--epochs", "1", *SMALL), "already holds a run",
                   f"--resume {out}", "--overwrite")
    assert (out / "last.npz").read_bytes() == before and (out / "best.npz").exists()
    one_line_error(scratchrnn("train", "--resume", str(out), "--epochs", "3", "--overwrite"),
                   "--overwrite contradicts --resume")
    one_line_error(scratchrnn("train", "--init-from", str(out), "--out", str(out), "--overwrite", "--epochs", "1",
                              "--device", "cpu"), "would delete")
    assert (out / "last.npz").read_bytes() == before
    # without --overwrite: the new run needs its own --out (it said to give --init-from, which was given)
    one_line_error(scratchrnn("train", "--init-from", str(out), "--out", str(out), "--epochs", "1", "--device", "cpu"),
                   f"--out {out} holds the run --init-from starts from; give the new run its own --out")
    # --overwrite deletes the old run only once the new one has passed every check: a new run refused for its
    # corpus (or its size, or its device) cost the old one its checkpoints before.
    for refused, needle in ((["--corpus", str(tmp_path / "missing.txt")], "does not exist"),
                            (["--hidden", "100000000"], "needs about")):
        one_line_error(scratchrnn("train", "--out", str(out), "--overwrite", "--epochs", "1", "--device", "cpu",
                                  *refused), needle)
        assert (out / "last.npz").read_bytes() == before and (out / "best.npz").exists()
    cli.main(["train", "--out", str(out), "--epochs", "1", "--overwrite", "--val-fraction", "0", *SMALL])
    assert not (out / "best.npz").exists()
    _, manifest = weights(out)
    assert manifest["epoch"] == 1 and (out / "metrics.csv").read_text().count("\n") == 2    # header, epoch 1


def test_one_training_at_a_time_writes_into_a_run_folder(tmp_path):
    """A second `scratchrnn train` into a folder a training is writing into (its resume, an --overwrite, a new run) is
    one line, and touches nothing there: it would write its checkpoints and metrics between the first's, or delete
    them. The hold is the kernel's (flock), let go of when its process ends, even killed."""
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "2", *SMALL])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with hold_out_dir(out):                                       # as a training in another process holds it
        for second in (["--resume", str(out), "--epochs", "3"],
                       ["--out", str(out), "--overwrite", "--epochs", "1", *SMALL],
                       ["--out", str(out), "--epochs", "1", *SMALL]):
            one_line_error(scratchrnn("train", *second), f"{out} is in use", f"--resume {out}")
            assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    cli.main(["train", "--resume", str(out), "--epochs", "3", "--device", "cpu"])     # let go of: it resumes
    assert weights(out)[1]["epoch"] == 3
    busy = tmp_path / "busy"
    with running("train", "--out", str(busy), "--epochs", "100000", *SMALL) as proc:
        read_until(proc.stdout, "epoch    1")
        one_line_error(scratchrnn("train", "--resume", str(busy)), f"{busy} is in use")
        proc.kill()
        proc.wait(timeout=60)
    cli.main(["train", "--out", str(busy), "--overwrite", "--epochs", "1", *SMALL])
    assert weights(busy)[1]["epoch"] == 1


def test_resume_of_a_folder_with_only_best_npz_names_init_from(tmp_path, trained):
    (tmp_path / "best.npz").write_bytes((trained / "last.npz").read_bytes())
    one_line_error(scratchrnn("train", "--resume", str(tmp_path)), "no last.npz to continue from, only best.npz",
                   f"--init-from {tmp_path} --out NEW")


def test_a_folder_or_file_that_holds_no_run_says_what_is_wanted(tmp_path, trained):
    """--resume and --from of what holds no run said "checkpoint 'X/last.npz' does not exist", which reads as a
    file to make: a folder that is not there, a file (a checkpoint's: its folder is named), a folder whose run was
    killed before its first checkpoint (start it again)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for what, needles in [(tmp_path / "none", ["--resume", "there is no such folder"]),
                          (trained / "last.npz", ["a file, not a run's folder", f"(--resume {trained})"]),
                          (trained / "metrics.csv", ["a file, not a run's folder; give the folder its train --out"]),
                          (empty, ["holds no checkpoint to continue from", f"start the run again with --out {empty}"])]:
        one_line_error(scratchrnn("train", "--resume", str(what)), *needles)
    for command in (["generate", "--from", str(empty)], ["train", "--init-from", str(empty), "--out", str(tmp_path)]):
        one_line_error(scratchrnn(*command), f"{empty} holds no checkpoint (best.npz or last.npz")


def test_generate_without_from_reads_the_run_train_wrote_without_out(tmp_path):
    """`scratchrnn train --corpus my.txt` writes to scratchrnn-run (no --out), and `scratchrnn generate` then said
    "the following arguments are required: --from"; its --from is now that folder when none is given, and where
    there is no run yet, the line says so and names --from."""
    r = scratchrnn("generate", cwd=tmp_path)
    one_line_error(r, "there is no run in scratchrnn-run (where train writes without --out); give --from DIR")
    assert scratchrnn("train", "--epochs", "1", *SMALL, cwd=tmp_path).returncode == 0
    r = scratchrnn("generate", "--prefix", "the", "--length", "5", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("the") and len(r.stdout) == len("the") + 5 + 1, r.stderr


def test_validating_most_of_the_run_is_noted(tmp_path, capsys):
    """--validate-every-steps N reads the whole validation text every N minibatches: 3 on a text of 300,000 tokens
    held out 20% (60,000 every 54 trained) made a run that validated more than 99% of its time, without a word. One
    line says so, and which N gives validating a tenth of the run; none where it takes less than half."""
    small = [a for a in SMALL if a != "--log-every"][:-1]
    cli.main(["train", "--out", str(tmp_path / "a"), "--epochs", "1", "--validate-every-steps", "1", *small])
    err = capsys.readouterr().err             # 300 validation tokens (2.5 times as fast) after every 8 x 10 trained
    assert err == ("note: --validate-every-steps 1 reads the 300 validation tokens after every 80 trained: about 60% "
                   "of the run would go to validating (a pass runs at about 2.5 times the training's tokens/s); "
                   "--validate-every-steps 14 gives it a tenth\n")
    cli.main(["train", "--out", str(tmp_path / "b"), "--epochs", "1", "--validate-every-steps", "2", *small])
    assert capsys.readouterr().err == ""                                     # 43%
    cli.main(["train", "--out", str(tmp_path / "c"), "--epochs", "1", "--validate-every-steps", "1",
              "--val-fraction", "0.5", *small])
    assert capsys.readouterr().err.endswith("after every 80 trained: about 88% of the run would go to validating (a "
                                            "pass runs at about 2.5 times the training's tokens/s); "
                                            "--validate-every-steps 0 leaves it to each epoch's end\n")
    said = []                                 # the text of 300,000 characters, 20% held out, minibatches of 2 x 9
    cli.note_validation_share(dict(validate_every_steps=3, batch_size=2, num_steps=9), 60_000, 13_332, said.append)
    assert said == ["note: --validate-every-steps 3 reads the 60,000 validation tokens after every 54 trained: more "
                    "than 99% of the run would go to validating (a pass runs at about 2.5 times the training's "
                    "tokens/s); --validate-every-steps 12,000 gives it a tenth"]


def test_writing_most_of_the_run_is_noted(tmp_path, monkeypatch, capsys):
    """--save-every-steps 4 on a text of 300,000 characters of a 4,000-character vocabulary, minibatches of 2 x 3:
    each write of last.npz (14 ms, flushed to the disk) came after 3 ms of training, and the run, 82% writing, went
    past 10 minutes without a word. Once the training's speed is known, the first write's time is weighed against
    the N minibatches': one line says so, and which N gives writing a tenth of the run. Here on a clock where each
    write takes a second."""
    import time as clock
    real, shift = clock.perf_counter, {"s": 0.0}
    monkeypatch.setattr(clock, "perf_counter", lambda: real() + shift["s"])
    save_run = cli.save_run

    def slow_save(*a, **k):
        shift["s"] += 1.0
        return save_run(*a, **k)
    monkeypatch.setattr(cli, "save_run", slow_save)
    monkeypatch.setattr(cli, "SPEED_WINDOW_S", 0.0)                # (a speed from the second minibatch on)
    small = [a for a in SMALL if a != "--log-every"][:-1]
    cli.main(["train", "--out", str(tmp_path / "a"), "--epochs", "1", "--save-every-steps", "2", *small])
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and re.fullmatch(
        r"note: --save-every-steps 2 writes last.npz \(1,0\d\d ms a write\) after every 2 minibatches \(\d+ ms of "
        r"training\): about (9\d|100)% of the run goes to writing; --save-every-steps 0 leaves it to each epoch's end",
        err[0])
    said = []                                 # the measured run above: 14 ms a write, 0.74 ms a minibatch
    cli.note_saving_share(4, 0.014, 0.00074, 49_999, said.append)
    assert said == ["note: --save-every-steps 4 writes last.npz (14 ms a write) after every 4 minibatches (3 ms of "
                    "training): about 83% of the run goes to writing; --save-every-steps 171 gives it a tenth"]
    cli.note_saving_share(19, 0.014, 0.00074, 49_999, said.append)    # 50%: no note
    assert len(said) == 1


def test_a_weights_file_given_as_a_run_says_what_it_lacks(tmp_path, capsys):
    """`python examples/train_deep_lstm.py --save w.npz`, then `scratchrnn generate --from w.npz`: "'w.npz' is not a
    scratchrnn checkpoint (no manifest.json)". The line says what the file is, what it lacks and what has it."""
    import zipfile

    from scratchrnn.checkpoint import save_weights
    from scratchrnn.model import RNNLM
    save_weights(RNNLM(28, 8, 1, "lstm"), tmp_path / "w.npz")
    for command in (["generate", "--from"], ["evaluate", "--corpus", str(tmp_path / "w.npz"), "--from"],
                    ["train", "--out", str(tmp_path / "new"), "--init-from"]):
        with pytest.raises(SystemExit):
            cli.main([*command, str(tmp_path / "w.npz")])
        assert capsys.readouterr().err == (
            f"error: '{tmp_path / 'w.npz'}' holds a model's weights alone (what an example's --save writes, for "
            "PyTorch's load_state_dict), without the vocabulary and config of a run's checkpoint; a run of scratchrnn "
            "train --out DIR has them (the book's recipe: --optimizer sgd --dropout 0 --charset book --max-tokens "
            "10000)\n")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as z:                     # any other .npz: as before
        z.writestr("x.npy", b"")
    with pytest.raises(SystemExit):
        cli.main(["generate", "--from", str(tmp_path / "other.npz")])
    assert capsys.readouterr().err == (f"error: '{tmp_path / 'other.npz'}' is not a scratchrnn checkpoint (no "
                                       "manifest.json)\n")


def test_evaluate_scores_a_text_with_a_trained_model(trained, tmp_path, capsys):
    """`scratchrnn evaluate --from RUN --corpus test.txt`: the perplexity of a trained model on a text of one's own
    (a test set, another book), read as the run read its own (here --charset book) onto its vocabulary, every token
    of its rows scored (with --max-tokens N, of its first N tokens); a token the vocabulary lacks is <unk>, with a note,
    and what cannot be scored is one line."""
    import math

    from scratchrnn.checkpoint import model_from_checkpoint
    from scratchrnn.data import TIME_MACHINE, load_corpus
    from scratchrnn.train import evaluate
    text = tmp_path / "test.txt"
    text.write_text(Path(TIME_MACHINE).read_text()[-4000:])
    capsys.readouterr()
    cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert err == ("note: --charset book drops or changes 337 of the text's 4,000 characters (8.4%); the model's run "
                   "read its text so (a new run with --charset raw keeps every character as written)\n")
    arrays, manifest = load_checkpoint(trained / "best.npz")
    model, vocab = model_from_checkpoint(arrays, manifest)
    corpus, _ = load_corpus(str(text), max_tokens=-1, vocab=vocab)
    ppl = evaluate(model, corpus, 8, 10, whole=True)
    scored = (len(corpus) - 1) // 8 * 8
    seconds = re.search(r"scored, ([0-9.]+ s)", out)[1]
    assert out == (f"perplexity {ppl:.2f} on {text} ({math.log2(ppl):.3f} bits a character; {scored:,} of its "
                   f"{len(corpus):,} tokens scored, {seconds}) by {trained / 'best.npz'}, after epoch 1\n")
    assert 1 < ppl < len(vocab) and len(corpus) > 3000
    # --max-tokens N: the text's first N tokens, scored as a text of N tokens is
    cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--device", "cpu", "--max-tokens", "1000"])
    out, _ = capsys.readouterr()
    first = evaluate(model, corpus[:1000], 8, 10, whole=True)
    assert first != ppl and out.startswith(f"perplexity {first:.2f} on {text} (") and \
        f"; {999 // 8 * 8:,} of its first 1,000 tokens scored, " in out
    cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--device", "cpu", "--max-tokens", "-1"])
    assert capsys.readouterr()[0].startswith(f"perplexity {ppl:.2f} on {text} (")          # all of it, as train's -1
    for n, said in (("1", "--max-tokens 1 leaves one token, and a perplexity needs 2 at least (one to predict the "
                          "next)"), ("0", "--max-tokens must be positive or -1 (got 0)")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--max-tokens", n])
        assert stop.value.code == 2 and capsys.readouterr().err == f"error: {said}\n"
    # a run on --charset raw: characters it never saw are <unk>, which its model never saw either
    raw = tmp_path / "raw"
    (tmp_path / "abc.txt").write_text("abc cab bac " * 300)
    cli.main(["train", "--corpus", str(tmp_path / "abc.txt"), "--out", str(raw), "--epochs", "1", "--hidden", "8",
              "--batch-size", "4", "--num-steps", "5", "--device", "cpu"])
    (tmp_path / "abcd.txt").write_text("abcd " * 20)
    capsys.readouterr()
    cli.main(["evaluate", "--from", str(raw), "--corpus", str(tmp_path / "abcd.txt")])
    out, err = capsys.readouterr()
    assert err == ("note: 20 of the 100 tokens (20.0%) are not in the model's vocabulary of 5 and are read as <unk>\n"
                   "note: this run's model was never shown <unk> (its text had none), so each <unk> costs it dearly\n")
    assert out.startswith("perplexity ") and "96 of its 100 tokens scored" in out
    (tmp_path / "a.txt").write_text("a")
    for args, said in ((["--corpus", str(tmp_path / "a.txt")], f"corpus {tmp_path / 'a.txt'} has 1 token, and a "
                        "perplexity needs 2 at least (one to predict the next)"),
                       (["--corpus", str(tmp_path / "none.txt")], f"corpus '{tmp_path / 'none.txt'}' does not exist"),
                       ([], "the following arguments are required: --corpus (see --help)")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["evaluate", "--from", str(raw), *args])
        assert stop.value.code == 2 and capsys.readouterr().err == f"error: {said}\n"
    (tmp_path / "zh.txt").write_text("时间旅行者")                    # the run's --charset book keeps no character
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--from", str(trained), "--corpus", str(tmp_path / "zh.txt")])
    assert capsys.readouterr().err.splitlines()[-1] == (f"error: corpus {tmp_path / 'zh.txt'} has no tokens left "
                                                        "after preprocessing with --charset book, as the model's run "
                                                        "read its own text")


def test_a_refused_text_is_one_line_without_the_notes_of_its_reading(tmp_path):
    """--init-from on a short text with new tokens, read by --charset book: the notes of its reading (the charset's
    losses, the tokens added; the fuzz's had --min-freq's <unk>s too) came before the refusal of a text too short for
    a minibatch, three or four lines for a run that never started. The refusal is the one line; the notes come where
    the run goes on. So for evaluate."""
    (tmp_path / "abc.txt").write_text("abc cab bac " * 300)
    common = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--device", "cpu", "--charset", "book",
              "--min-freq", "2"]
    assert scratchrnn("train", "--corpus", str(tmp_path / "abc.txt"), "--out", str(tmp_path / "run"), *common,
                      "--batch-size", "4", "--num-steps", "5").returncode == 0
    (tmp_path / "new.txt").write_text("Abc, xyz! q " * 40)
    r = scratchrnn("train", "--init-from", str(tmp_path / "run"), "--corpus", str(tmp_path / "new.txt"), "--out",
                   str(tmp_path / "ft"), "--device", "cpu")
    one_line_error(r, "corpus has 399 tokens, too short for one minibatch of 32 x 35")
    r = scratchrnn("train", "--init-from", str(tmp_path / "run"), "--corpus", str(tmp_path / "new.txt"), "--out",
                   str(tmp_path / "ft"), "--device", "cpu", "--batch-size", "4", "--num-steps", "5")
    notes = r.stderr.splitlines()
    assert r.returncode == 0 and len(notes) == 2 and all(line.startswith("note: ") for line in notes), r.stderr
    one_line_error(scratchrnn("evaluate", "--from", str(tmp_path / "run"), "--corpus", str(tmp_path / "q.txt")),
                   "does not exist")
    (tmp_path / "one.txt").write_text("A")                    # a charset's note, then 1 token: the refusal alone
    one_line_error(scratchrnn("evaluate", "--from", str(tmp_path / "run"), "--corpus", str(tmp_path / "one.txt")),
                   "has 1 token, and a perplexity needs 2 at least")


def test_evaluate_on_a_text_the_run_trained_on_says_so(tmp_path):
    """`scratchrnn evaluate --from RUN --corpus train.txt` on the run's own text gave its perplexity as on any text,
    a training perplexity that reads as a held-out one. One line says so: the run's --corpus file (the same bytes,
    where it is, a copy, or what it read on standard input), or the same tokens as its text (the shipped book, which
    keeps no file's digest). A text it never read has no such line."""
    from scratchrnn.data import TIME_MACHINE
    text, other = tmp_path / "train.txt", tmp_path / "other.txt"
    text.write_text("the cat sat on the mat. " * 100)
    other.write_text("the mat sat on the cat. " * 100)
    common = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--num-steps", "5",
              "--device", "cpu"]
    assert scratchrnn("train", "--corpus", str(text), "--out", str(tmp_path / "run"), *common).returncode == 0
    (tmp_path / "copy.txt").write_bytes(text.read_bytes())
    tail = "which the run trained on: a perplexity on it is not a held-out one; it held out the last 10% of its text"
    for given, said in ((text, f"note: {text} is the run's own --corpus, {tail}"),
                        (tmp_path / "copy.txt", f"note: {tmp_path / 'copy.txt'} holds the same bytes as {text}, the "
                                                f"run's --corpus, {tail}"),
                        (other, None)):
        r = scratchrnn("evaluate", "--from", str(tmp_path / "run"), "--corpus", str(given))
        assert r.returncode == 0 and r.stdout.startswith("perplexity ")
        assert r.stderr == (f"{said} for validation\n" if said else ""), r.stderr
    r = scratchrnn("train", "--corpus", "-", "--out", str(tmp_path / "piped"), "--val-fraction", "0", *common,
                   input=text.read_text())
    assert r.returncode == 0, r.stderr
    r = scratchrnn("evaluate", "--from", str(tmp_path / "piped"), "--corpus", str(text))
    assert r.stderr == (f"note: {text} holds the same bytes as the text the run read on standard input, which the run "
                        f"trained on: a perplexity on it is not a held-out one\n")
    r = scratchrnn("train", "--out", str(tmp_path / "book"), *common, "--val-fraction", "0.05")   # the shipped book
    assert r.returncode == 0, r.stderr
    r = scratchrnn("evaluate", "--from", str(tmp_path / "book"), "--corpus", str(TIME_MACHINE))
    assert r.stderr == (f"note: {TIME_MACHINE} is the run's training text, token for token, which the run trained on: "
                        f"a perplexity on it is not a held-out one; it held out the last 5% of its text for "
                        f"validation\n")


def test_evaluate_whose_numbers_overflow_says_so_in_one_line(tmp_path):
    """A ReLU RNN trained on chunks of 3 from a zero state (--random-iter), scored by evaluate over rows of 2,499
    words (the fuzz): its state grew past float32's range, and evaluate printed "perplexity nan" after a screen of
    NumPy's overflow warnings. One line says what happened. Here the run's recurrent weights are scaled up until its
    state overflows on a text of 3,000 characters."""
    text = tmp_path / "t.txt"
    text.write_text(("the time traveller " * 200)[:3000])
    out = tmp_path / "run"
    assert scratchrnn("train", "--corpus", str(text), "--out", str(out), "--epochs", "1", "--cell", "rnn",
                      "--nonlinearity", "relu", "--hidden", "8", "--layers", "1", "--batch-size", "4", "--num-steps",
                      "5", "--device", "cpu", "--val-fraction", "0").returncode == 0
    arrays, manifest = load_checkpoint(out / "last.npz")
    arrays["rnn.weight_hh_l0"] = np.abs(arrays["rnn.weight_hh_l0"]) * 100
    arrays["rnn.bias_hh_l0"] = np.abs(arrays["rnn.bias_hh_l0"]) + 1
    save_checkpoint(out / "last.npz", arrays, manifest)
    r = scratchrnn("evaluate", "--from", str(out), "--corpus", str(text))
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and r.stdout == "" and "Warning" not in r.stderr, r.stderr
    assert lines[-1] == (f"error: scoring {text} overflowed: the model's numbers left float32's range within its rows "
                         f"of 749 tokens (it trained on chunks of 5), so its perplexity there is not a number; a ReLU "
                         f"RNN's state has no bound, a run with --nonlinearity tanh (or a GRU or an LSTM) keeps it "
                         f"bounded")
    assert lines[:-1] == [f"note: {text} is the run's own --corpus, which the run trained on: a perplexity on it is "
                          f"not a held-out one"]
    # generate: a traceback ("Probabilities contain NaN") when sampling, garbage under warnings when greedy; the
    # tokens before the overflow, then one line. A --sample of the log says so, and the run goes on
    said = r"the model's numbers overflowed (\d+) tokens into the text \(its state left the float range\): it has no " \
           r"next token to give"
    for sampling in ([], ["--temperature", "1", "--seed", "1"]):
        r = scratchrnn("generate", "--from", str(out), "--prefix", "the ", "--length", "100", *sampling)
        tokens = re.fullmatch(f"error: {said}\n", r.stderr)
        assert r.returncode == 2 and tokens, r.stderr                    # (18 here)
        assert r.stdout.startswith("the ") and r.stdout.endswith("\n") and len(r.stdout) == int(tokens[1]) + 1
    from scratchrnn.checkpoint import model_from_checkpoint
    model, vocab = model_from_checkpoint(*load_checkpoint(out / "last.npz"))
    sample = re.fullmatch(f"'(.*)' \\({said}\\)", cli.sample_text(model, vocab, 50, (0, 1)))
    assert sample and len(sample[1]) == int(sample[2])


def test_a_validation_that_overflows_is_noted_once(tmp_path, monkeypatch, capsys):
    """A validation that overflows (the ReLU RNN above, over rows longer than its training chunks) logged
    "validation perplexity nan" at every epoch without a word of why; one note says so, once, and the run goes on.
    Here on a stand-in evaluate that gives nan."""
    monkeypatch.setattr(cli, "evaluate", lambda *a, **k: float("nan"))
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "3", *SMALL, "--cell", "rnn", "--nonlinearity",
              "relu", "--random-iter"])
    out, err = capsys.readouterr()
    assert out.count("validation perplexity     nan") == 3
    assert err == ("note: the validation overflowed: the model's numbers left float32's range within its rows of 37 "
                   "tokens (it trains on chunks of 10, each from a zero state), so its perplexity there is not a "
                   "number; a ReLU RNN's state has no bound\n")
    assert weights(tmp_path / "run")[1]["epoch"] == 3


def test_an_interrupted_evaluate_gives_the_perplexity_so_far(trained, tmp_path, monkeypatch, capsys):
    """A Ctrl-C in a long scoring (a 56 MiB text: 16 minutes) said "interrupted" alone, and the minutes were lost. It
    stops at the next chunk and gives the perplexity of what it scored: each row's first chunks (here 3 of 8 rows'
    chunks of 10: the model read 30 steps of each row from a zero state). Exit status 130; a second Ctrl-C leaves
    at once."""
    import math

    from scratchrnn import output
    from scratchrnn.checkpoint import model_from_checkpoint
    from scratchrnn.data import TIME_MACHINE, load_corpus
    from scratchrnn.train import evaluation_rows
    text = tmp_path / "test.txt"
    text.write_text(Path(TIME_MACHINE).read_text()[-4000:])
    evaluate = cli.evaluate

    def ctrl_c_at_chunk_3(*a, progress, **k):
        told = []

        def progress_then_ctrl_c(n):
            progress(n)
            told.append(n)
            if len(told) == 3:
                os.kill(os.getpid(), signal.SIGINT)
        return evaluate(*a, progress=progress_then_ctrl_c, **k)
    monkeypatch.setattr(cli, "evaluate", ctrl_c_at_chunk_3)
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert stop.value.code == 130 and out == ""
    arrays, manifest = load_checkpoint(trained / "best.npz")
    model, vocab = model_from_checkpoint(arrays, manifest)
    corpus, _ = load_corpus(str(text), max_tokens=-1, vocab=vocab)
    rows, length, scored = evaluation_rows(len(corpus), 8, 10, whole=True)
    X = corpus[:rows * length].reshape(rows, length)[:, :30]
    Y = corpus[1:rows * length + 1].reshape(rows, length)[:, :30]
    logits, _ = model.forward(np.ascontiguousarray(X.T), model.begin_state(rows))
    ppl = math.exp(float(output.softmax_cross_entropy(logits, np.ascontiguousarray(Y.T).reshape(-1))[0]))
    said = re.fullmatch(r"interrupted \(SIGINT\): perplexity ([0-9.]+) \(([0-9.]+) bits a character\) on the 240 "
                        r"tokens scored so far, ([0-9.]+)% of the ([0-9,]+) \(the first 30 of each of the 8 rows the "
                        r"text is read in\)\n", err.split("\n", 1)[1])       # (after the charset's note)
    assert said and float(said[1]) == pytest.approx(ppl, abs=0.006) and float(said[2]) == pytest.approx(
        math.log2(ppl), abs=0.0006)
    assert said[4] == f"{scored:,}" and float(said[3]) == pytest.approx(100 * 240 / scored, rel=1e-3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler          # put back
    # a second Ctrl-C before the chunk's end: at once, "interrupted" alone

    def twice(n):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(cli, "evaluate", lambda *a, progress, **k: evaluate(*a, progress=twice, **k))
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--from", str(trained), "--corpus", str(text), "--device", "cpu"])
    assert stop.value.code == 130 and capsys.readouterr().err.endswith("\ninterrupted\n")


def test_unfinished_writes_of_a_killed_run_are_removed_by_the_next_training(tmp_path, capsys):
    """A process killed while it saves (kill -9, the power) leaves its temporary file (.last.npz.RANDOM.tmp, as large
    as a checkpoint) in the run folder, and each such kill one more; the training that next holds the folder removes
    them, with a note. Another file's temporary file, or a file of the user's, stays."""
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", *SMALL])
    left = [out / ".last.npz.k1ll3d.tmp", out / ".metrics.csv.x_9.tmp"]
    kept = [out / ".weights.npz.abc.tmp", out / "notes.tmp"]
    for p in left + kept:
        p.write_bytes(b"\0" * 1000)
    capsys.readouterr()
    cli.main(["train", "--resume", str(out), "--epochs", "2"])
    assert capsys.readouterr().err.splitlines()[0] == ("note: removed 2 unfinished writes of a process killed while it "
                                                       "saved (.last.npz.k1ll3d.tmp, .metrics.csv.x_9.tmp: 2.0 KiB)")
    assert [p.exists() for p in left + kept] == [False, False, True, True]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_fast_split_on_one_cpu_says_fast_is_faster(tmp_path):
    """Its two processes take turns on one CPU (taskset -c 0, a container of one): 15% slower than fast, so a note."""
    one_cpu = "import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from scratchrnn import cli; "
    r = subprocess.run([sys.executable, "-c", one_cpu + "cli.main(sys.argv[1:])", "train", "--out", str(tmp_path / "o"),
                        "--engine", "fast-split", "--epochs", "1", *SMALL], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "note: --engine fast-split computes each chunk's two halves on two cores" in r.stderr
    assert "--engine fast is faster here" in r.stderr
    if len(os.sched_getaffinity(0)) > 1:
        r = scratchrnn("train", "--out", str(tmp_path / "o2"), "--engine", "fast-split", "--epochs", "1", *SMALL)
        assert r.returncode == 0 and "fast-split computes" not in r.stderr, r.stderr


def test_an_intel_cpu_without_mkl_is_told_how_to_train_faster(tmp_path, monkeypatch, capsys):
    """On an Intel CPU the fast engine's GEMMs run on MKL where it is installed; without it they run on NumPy's
    OpenBLAS, and the book's deep LSTM took 1.3-1.4x the time (README, Set-up; Intel Xeon family 6 model 207), without
    a word. A note says so, and how to keep OpenBLAS without it; none where MKL is there, on another CPU, where
    SCRATCHRNN_BLAS chose, or for an engine or device that does not run those GEMMs."""
    from scratchrnn.engines import mkl
    missing, loaded = (None, "libmkl_rt.so.3: cannot open shared object file"), (object(), None)
    monkeypatch.setattr(cmdline, "usable_cpus", lambda: 2)         # fast-split's own note stays out of it

    def note(engine="fast", device="cpu", intel=True, library=missing, setting=None):
        monkeypatch.setattr(mkl, "intel_cpu", lambda: intel)
        monkeypatch.setattr(mkl, "load", lambda: library)
        if setting is None:
            monkeypatch.delenv(mkl.VARIABLE, raising=False)
        else:
            monkeypatch.setenv(mkl.VARIABLE, setting)
        cmdline.note_engine_on_cpu(engine, device)
        return capsys.readouterr().err

    told = note()
    assert told.count("\n") == 1
    assert told.startswith("note: on this Intel CPU the fast engine's matrix products run on NumPy's OpenBLAS; with "
                           "Intel's MKL (pip install 'scratchrnn[mkl]'")
    assert "SCRATCHRNN_BLAS=numpy keeps OpenBLAS without this note" in told
    assert note(engine="fast-split") == note(setting="auto") == note(setting="") == told
    assert note(library=loaded) == note(intel=False) == note(setting="numpy") == ""
    assert note(engine="reference") == note(device="gpu") == ""
    monkeypatch.setattr(mkl, "intel_cpu", lambda: True)            # and from the command, before it trains
    monkeypatch.setattr(mkl, "load", lambda: missing)
    monkeypatch.delenv(mkl.VARIABLE, raising=False)
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", *SMALL])
    err = capsys.readouterr().err
    assert "note: on this Intel CPU the fast engine's matrix products run on NumPy's OpenBLAS" in err
    assert (tmp_path / "run" / "last.npz").exists()


def test_a_resume_on_other_sums_than_its_run_says_so(tmp_path):
    """An exact resume runs the sums its run ran. MKL installed or removed between the two (or SCRATCHRNN_BLAS
    changed, or --device auto finding a GPU) changes the engine without a flag: the weights' last bits then differ
    from a run never stopped (MKL's against OpenBLAS's after one epoch: all 8 arrays, by up to 1.5e-7), and the resume
    said nothing. The checkpoint keeps the engine's name; a resume on another one, not asked for by --engine or
    --device, says so in a note. None for the same engine, for one asked for, or for a checkpoint that kept none."""
    out = tmp_path / "run"
    args = ["--epochs", "1", *SMALL]
    assert scratchrnn("train", "--out", str(out), "--engine", "reference", *args).returncode == 0
    arrays, manifest = load_checkpoint(out / "last.npz")
    assert manifest["engine_name"] == "reference"

    def resume(engine_name, *flags, epochs):
        save_checkpoint(out / "last.npz", arrays, {**manifest, "engine_name": engine_name})
        r = scratchrnn("train", "--resume", str(out), "--epochs", str(epochs), *flags)
        assert r.returncode == 0, r.stderr
        return [line for line in r.stderr.splitlines() if line.startswith("note:")]

    assert resume("fast (Numba) with MKL", epochs=2) == [
        f"note: {out} trained on fast (Numba) with MKL, and resumes on reference: the same mathematics, but its sums' "
        f"last bits differ from those of a run never stopped"]
    assert resume("reference", epochs=2) == resume(None, epochs=2) == []
    assert resume("fast (Numba) with MKL", "--engine", "reference", epochs=2) == []
    assert resume("fast (Numba) with MKL", "--device", "cpu", epochs=2) == []
    assert load_checkpoint(out / "last.npz")[1]["engine_name"] == "reference"         # the resume's, kept


def test_a_resume_on_other_blas_threads_or_another_processor_says_so(tmp_path, monkeypatch, capsys):
    """With MKL (or OpenBLAS's AVX2 kernels, whose recurrent layouts differ on one thread and on more) the BLAS threads
    change the bits, and a resume on another count (--threads, or the default, every core, on another machine) said
    nothing; nor did one on another processor (a checkpoint carried to another machine, where the BLAS and Numba's
    kernels may run other code). The checkpoint keeps both (blas_threads, processor); a resume on another processor
    says so in a note, and one on another count, where the engine says its sums follow them (threads_change_sums),
    with the --threads that keeps them where this machine has the CPUs. None where they are the same, where the
    engine's sums do not follow the threads, or for a checkpoint without them."""
    from scratchrnn.backend import cpu_model
    from scratchrnn.engines import fast as fast_engine, mkl
    monkeypatch.setenv(mkl.VARIABLE, "numpy")
    monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: "Haswell")
    monkeypatch.setattr(cli, "usable_cpus", lambda: 2)
    out = tmp_path / "run"
    cli.main(["train", "--out", str(out), "--epochs", "1", "--engine", "fast", "--threads", "1", *SMALL])
    arrays, manifest = load_checkpoint(out / "last.npz")
    assert manifest["blas_threads"] == 1 and manifest["engine_name"] == "fast (Numba)"
    assert manifest["processor"] == cpu_model()

    def resume(threads_then, processor=cpu_model(), epochs=2):
        save_checkpoint(out / "last.npz", arrays, {**manifest, "blas_threads": threads_then, "processor": processor})
        capsys.readouterr()
        cli.main(["train", "--resume", str(out), "--epochs", str(epochs), "--threads", "1"])
        return [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]

    assert resume(2) == [
        f"note: {out} trained with its matrix products on 2 threads, and resumes on 1: on fast (Numba) the sums' last "
        f"bits then differ from those of a run never stopped; --threads 2 keeps them"]
    assert resume(4) == [
        f"note: {out} trained with its matrix products on 4 threads, and resumes on 1: on fast (Numba) the sums' last "
        f"bits then differ from those of a run never stopped"]
    assert resume(2, "AMD EPYC (family 25, model 17, stepping 1)") == [
        f"note: {out} trained on AMD EPYC (family 25, model 17, stepping 1), and resumes on {cpu_model()}: the BLAS "
        f"and our kernels may run other code here, and then the sums' last bits differ from those of a run never "
        f"stopped"]
    assert resume(1) == resume(None, None) == []
    saved = load_checkpoint(out / "last.npz")[1]
    assert (saved["blas_threads"], saved["processor"]) == (1, cpu_model())           # the resume's, kept
    monkeypatch.setattr(fast_engine, "numpy_blas_kernels", lambda: "SkylakeX")       # the same layouts on any count
    assert resume(2) == []


def test_a_refused_run_leaves_no_new_folder_behind(tmp_path):
    """--out is created before the corpus is read (so that a folder that cannot be written is found first); a run
    refused after that removes the folders it created, while empty, and nothing that was there before."""
    out = tmp_path / "new" / "deeper" / "run"
    one_line_error(scratchrnn("train", "--out", str(out), "--corpus", str(tmp_path / "missing.txt")), "does not exist")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "kept"), "--device", "cpu", "--hidden", "100000000"),
                   "needs about")
    assert (tmp_path / "kept").is_dir()


def test_output_directory_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(scratchrnn("train", "--out", str(blocker / "run"), "--device", "cpu"), "cannot be written")
    one_line_error(scratchrnn("train", "--out", str(blocker), "--device", "cpu"), "is a file, not a folder")


def test_gpu_without_a_gpu(tmp_path):
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present")
    except Exception:
        pass
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "o"), "--device", "gpu"), "--device gpu")


@pytest.mark.parametrize("flags", [
    ["--cell", "rnn", "--nonlinearity", "relu", "--lr", "1e6", "--theta", "1e30", "--epochs", "5", "--hidden", "32"],
    # a finite loss past exp's range (1,699 nats): this was an OverflowError traceback
    ["--optimizer", "sgd", "--lr", "1000", "--theta", "1e9", "--dropout", "0", "--epochs", "3", "--hidden", "16",
     "--max-tokens", "60000", "--charset", "raw"],
], ids=["nan", "past-exp-range"])
def test_diverging_run_from_the_command_line(tmp_path, flags):
    r = scratchrnn("train", "--out", str(tmp_path / "o"), *flags, "--layers", "1", "--device", "cpu")
    assert r.returncode == cli.EXIT_DIVERGED
    one_line_error(r, "training diverged")


def test_progress_inside_an_epoch_every_n_minibatches(tmp_path):
    """--log-every-steps N: a line every N minibatches with the epoch's perplexity so far; a resume honours it."""
    out = tmp_path / "run"
    r = scratchrnn("train", "--out", str(out), "--epochs", "2", "--log-every-steps", "10", *SMALL)
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines() if "minibatch" in line]
    batches = int(lines[0][3].split("/")[1])
    assert batches > 20 and [(int(w[1]), w[3]) for w in lines] == [
        (epoch, f"{n}/{batches}") for epoch in (1, 2) for n in range(10, batches + 1, 10)]
    assert all(w[4:6] == ["train", "perplexity"] and 1 < float(w[6]) < 100 and w[-1] == "tokens/s" for w in lines)
    r = scratchrnn("train", "--resume", str(out), "--epochs", "3", "--log-every-steps", "30", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert [line.split()[:4] for line in r.stdout.splitlines() if "minibatch" in line] == [
        ["epoch", "3", "minibatch", f"30/{batches}"]]
    # each line is a row of steps.csv (kept in the checkpoint across the resume), and a point of the plot
    lines += [line.split() for line in r.stdout.splitlines() if "minibatch" in line]
    rows = [row.split(",") for row in (out / "steps.csv").read_text().splitlines()[1:]]
    assert [(int(e), int(b), int(n), round(float(t), 2), v) for e, b, n, t, v in rows] == \
        [(int(w[1]), int(w[3].split("/")[0]), batches, float(w[6]), "") for w in lines]


def test_a_log_has_the_first_epochs_line_and_never_falls_silent(tmp_path, capsys, monkeypatch):
    """The first epoch a call trains has its line, as the last has (its speed and perplexity at once: with the default
    --log-every 10 the first line of a 1 MB text's run came after 8 minutes), and a line comes inside an epoch where
    none came for cli.QUIET_AT_MOST_S (10 minutes; a 56 MiB text's log was silent for six hours, ten 38-minute
    epochs): here set to 0, every minibatch's."""
    out = tmp_path / "run"
    small = SMALL[:-2]                                                # without its --log-every 1
    cli.main(["train", "--out", str(out), "--epochs", "3", *small])
    cli.main(["train", "--resume", str(out), "--epochs", "5"])
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split()[1]) for line in lines if line.startswith("epoch")] == [1, 3, 4, 5]
    assert not (out / "steps.csv").exists()
    monkeypatch.setattr(cli, "QUIET_AT_MOST_S", 0.0)
    cli.main(["train", "--resume", str(out), "--epochs", "6"])
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    batches = int(lines[0][3].split("/")[1])
    assert [w[1:4] for w in lines[:-1]] == [["6", "minibatch", f"{b}/{batches}"] for b in range(1, batches + 1)]
    assert lines[-1][1:3] == ["6", "train"] and len((out / "steps.csv").read_text().splitlines()) == batches + 1


def test_a_resume_saves_logs_validates_and_samples_as_the_run_did(tmp_path, capsys, monkeypatch):
    """`train --resume DIR` alone goes on as the run was started: its --save-every-steps, --log-every(-steps),
    --validate-every-steps, --sample and --plot are kept in its checkpoint (a resume without them saved nothing inside
    the epochs of a long text, and logged and validated only at their ends). A flag given again replaces the run's
    own, 0 (--no-plot) turns one off, and what is given is kept for the next resume."""
    out = tmp_path / "run"
    watched = ["--save-every-steps", "9", "--log-every-steps", "10", "--validate-every-steps", "15", "--sample", "12",
               "--plot"]
    cli.main(["train", "--out", str(out), "--epochs", "1", *watched, *SMALL])
    capsys.readouterr()
    (out / "perplexity.png").unlink()
    saved, save_run = [], cli.save_run                 # (checkpoint, minibatch inside the epoch it was written at)
    monkeypatch.setattr(cli, "save_run", lambda path, *a: (saved.append((path.name, a[7] and a[7].batch)),
                                                           save_run(path, *a)))
    cli.main(["train", "--resume", str(out), "--epochs", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"resuming {out} after epoch 1; going on as before with --save-every-steps 9 --log-every 1 "
                        "--log-every-steps 10 --validate-every-steps 15 --sample 12 --plot")
    batches = int(next(line for line in lines if "minibatch" in line).split()[3].split("/")[1])
    assert [line.split()[3] for line in lines if " train perplexity" in line and "minibatch" in line] == [
        f"{b}/{batches}" for b in range(10, batches + 1, 10)]
    assert [line.split()[3] for line in lines if "validation perplexity" in line and "minibatch" in line] == [
        f"{b}/{batches}" for b in range(15, batches, 15)]
    assert [b for name, b in saved if name == "last.npz" and b] == list(range(9, batches + 1, 9))
    assert sum(line.startswith("  sample: ") and len(eval(line.split(": ", 1)[1])) == 12 for line in lines) == 1
    assert (out / "perplexity.png").is_file()
    (out / "perplexity.png").unlink()
    # turned off (and a step replaced) on one resume, they stay so on the next
    cli.main(["train", "--resume", str(out), "--epochs", "3", "--log-every-steps", "0", "--validate-every-steps", "0",
              "--sample", "0", "--no-plot", "--save-every-steps", "20"])
    cli.main(["train", "--resume", str(out), "--epochs", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert f"resuming {out} after epoch 3; going on as before with --save-every-steps 20 --log-every 1" in lines
    assert not [line for line in lines if "minibatch" in line or "sample" in line]
    assert not (out / "perplexity.png").exists() and weights(out)[1]["config"]["save_every_steps"] == 20
    # a checkpoint written before they were kept resumes with the flags' defaults, as it did
    arrays, manifest = load_checkpoint(out / "last.npz")
    manifest["config"] = {k: v for k, v in manifest["config"].items() if k not in cli.WATCH_KEYS}
    save_checkpoint(out / "last.npz", arrays, manifest)
    cli.main(["train", "--resume", str(out), "--epochs", "5"])
    assert capsys.readouterr().out.splitlines()[0] == f"resuming {out} after epoch 4"
    assert {k: weights(out)[1]["config"][k] for k in ("save_every_steps", "log_every")} == dict(save_every_steps=None,
                                                                                              log_every=10)


@pytest.mark.parametrize("engine", ["fast", "fast-split"])
def test_validation_inside_an_epoch_every_n_minibatches(tmp_path, capsys, engine):
    """--validate-every-steps N: the validation perplexity every N minibatches (a line; best.npz when the best so far,
    as char-rnn's -eval_val_every), for texts whose epoch is long. The training is untouched: a run validated inside
    its epochs, stopped and resumed with it, ends with the weights and history of a run without."""
    plain, validated = tmp_path / "plain", tmp_path / "validated"
    cli.main(["train", "--out", str(plain), "--epochs", "2", "--engine", engine, *SMALL])
    cli.main(["train", "--out", str(validated), "--epochs", "1", "--engine", engine, "--validate-every-steps", "7",
              *SMALL])
    cli.main(["train", "--resume", str(validated), "--epochs", "2", "--device", "cpu", "--validate-every-steps", "7"])
    out = capsys.readouterr().out
    inside = re.findall(r"^epoch +(\d+)  minibatch (\d+)/(\d+)  validation perplexity +([\d.]+)  \([\d.]+ s\)",
                        out, flags=re.M)
    batches = int(inside[0][2])
    assert [(int(e), int(b)) for e, b, _, _ in inside] == [(e, b) for e in (1, 2) for b in range(7, batches, 7)]
    a, ma = weights(plain)
    b, mb = weights(validated)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [h["val_perplexity"] for h in ma["history"]] == [h["val_perplexity"] for h in mb["history"]]
    assert [h["train_perplexity"] for h in ma["history"]] == [h["train_perplexity"] for h in mb["history"]]
    measured = [float(v) for *_, v in inside] + [h["val_perplexity"] for h in mb["history"]]
    _, best = weights(validated, "best.npz")
    assert best["best_val"] == pytest.approx(min(measured), abs=0.006) and mb["best_val"] == best["best_val"]
    assert best["best_val"] <= ma["best_val"]
    # steps.csv (and the checkpoint, for the plot and a resume): a row per validation inside the epochs
    assert [(s["epoch"], s["minibatch"], s["minibatches"], s["train_perplexity"], round(s["val_perplexity"], 2))
            for s in mb["steps"]] == [(int(e), int(b), batches, None, float(v)) for e, b, _, v in inside]
    rows = (validated / "steps.csv").read_text().splitlines()
    assert rows[0] == "epoch,minibatch,minibatches,train_perplexity,val_perplexity" and len(rows) == len(inside) + 1
    assert rows[1] == f"1,7,{batches},,{mb['steps'][0]['val_perplexity']}"
    assert ma["steps"] == [] and not (plain / "steps.csv").exists()
    one_line_error(scratchrnn("train", "--out", str(tmp_path / "none"), "--val-fraction", "0", "--validate-every-steps",
                              "5", *SMALL), "--val-fraction 0 holds none out")


def test_the_progress_bar_on_a_terminal_counts_minibatches(tmp_path):
    """On a terminal (stderr a pty) the bar counts the run's minibatches, not its epochs: an epoch of a long text
    left a bar in epochs standing still for its whole length."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))    # a terminal has a width
    p = subprocess.Popen([sys.executable, "-m", "scratchrnn", "train", "--out", str(tmp_path / "run"), "--epochs",
                          "2", *SMALL], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:                                                   # EIO: the child has closed the pty
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert p.wait(timeout=600) == 0
    text = shown.decode(errors="replace")
    done = re.findall(r"(\d+)/(\d+) \[", text)
    assert done and done[-1][0] == done[-1][1] and int(done[-1][1]) > 40, text[-500:]   # 2 epochs of 20+
    assert "minibatch/s" in text or "s/minibatch" in text
    assert "epoch=2/2" in text


def blas_threads_of_each_epoch(monkeypatch):
    """A list that gets, at each train_epoch call, the set of the BLAS pools' thread counts."""
    from threadpoolctl import threadpool_info
    seen = []
    real = cli.train_epoch

    def spy(*a, **k):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return real(*a, **k)

    monkeypatch.setattr(cli, "train_epoch", spy)
    return seen


def test_threads_flag_limits_blas_during_training(tmp_path, monkeypatch):
    seen = blas_threads_of_each_epoch(monkeypatch)
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--threads", "1", *SMALL])
    assert seen == [{1}]


def test_more_threads_than_cpus_are_capped_with_a_note(tmp_path, monkeypatch, capsys):
    """--threads 1000 ran MKL on 1000 threads over 2 cores (22-100x slower); now it runs on the CPUs there are."""
    cpus = len(os.sched_getaffinity(0))
    seen = blas_threads_of_each_epoch(monkeypatch)
    cli.main(["train", "--out", str(tmp_path / "run"), "--epochs", "1", "--threads", "1000", *SMALL])
    assert seen == [{cpus}]
    said = f"--threads 1000 is more than the {cpus} CPUs this process may run on; using {cpus}"
    assert said in capsys.readouterr().err


def test_a_text_given_without_corpus_is_one_line_that_names_it(tmp_path):
    text = tmp_path / "book.txt"
    text.write_text("some text " * 300)
    one_line_error(scratchrnn("train", str(text), "--out", str(tmp_path / "o")), "unrecognized arguments",
                   f"a text to train on is given as --corpus {text}")
    r = scratchrnn("train", "nothing-here", "--out", str(tmp_path / "o"))
    one_line_error(r, "unrecognized arguments: nothing-here (see --help)")
    assert not (tmp_path / "o").exists()
    # The book's examples take the same training flags, and say the same (they said only "unrecognized arguments").
    r = subprocess.run([sys.executable, "examples/train_deep_lstm.py", str(text), "--epochs", "1"], capture_output=True,
                       text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    one_line_error(r, "unrecognized arguments", f"a text to train on is given as --corpus {text}")
    # generate trains on nothing: a stray file there is only unrecognized.
    r = scratchrnn("generate", "--from", str(tmp_path / "o"), str(text))
    one_line_error(r, f"unrecognized arguments: {text} (see --help)")


def test_the_command_alone_lists_its_commands():
    """It said 'error: the following arguments are required: command'; now its help, as `pip` alone shows."""
    r = scratchrnn()
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert all(command in r.stdout for command in ("train", "generate", "gradcheck", "diagnose", "selftest"))


def test_the_command_says_its_version():
    """`scratchrnn --version`: the package's one version (setup.cfg reads scratchrnn.__version__), exit status 0."""
    from scratchrnn import __version__
    r = scratchrnn("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"scratchrnn {__version__}" and r.stderr == ""


def test_a_closed_pipe_ends_quietly_even_where_stdout_has_no_file_descriptor(capsys):
    """with_one_line_errors turns a BrokenPipeError into exit status 141 and nothing printed, also where stdout is
    not a file (as under pytest's capture, or an embedding program's StringIO)."""
    from scratchrnn.cmdline import EXIT_PIPE_CLOSED, with_one_line_errors

    def reader_gone():
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(SystemExit) as stop:
        with_one_line_errors(reader_gone)
    assert stop.value.code == EXIT_PIPE_CLOSED and capsys.readouterr() == ("", "")


def test_characters_the_output_cannot_encode_are_escaped_with_a_note(monkeypatch, capsys):
    """A Chinese model's text where standard output is ASCII or Latin-1 (PYTHONIOENCODING, a locale, a Windows file)
    was a UnicodeEncodeError traceback at its first character; now a \\u escape, and one note on stderr."""
    import io

    from scratchrnn.cmdline import with_one_line_errors
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="latin-1"))
    with_one_line_errors(lambda: (print("café 時は", flush=True), print("金なり", flush=True)))
    assert raw.getvalue().decode("latin-1") == "café \\u6642\\u306f\n\\u91d1\\u306a\\u308a\n"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("note: standard output's encoding (latin-1) cannot write every")


def test_running_out_of_memory_past_the_checks_is_one_line(capsys):
    """The checks before allocating (the model, the corpus) foresee what they can; an allocation that fails anyway
    (another process took the memory meanwhile) was a traceback. Now one line and exit status 2."""
    from scratchrnn.cmdline import EXIT_ERROR, with_one_line_errors

    def too_big():
        raise MemoryError

    with pytest.raises(SystemExit) as stop:
        with_one_line_errors(too_big)
    out, err = capsys.readouterr()
    assert stop.value.code == EXIT_ERROR and out == ""
    assert err.startswith("error: out of memory") and err.count("\n") == 1
