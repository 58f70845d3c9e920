"""Files of weights and checkpoints, and what a checkpoint's manifest holds.

Weights (`save_weights` / `load_weights`): a plain .npz of the model's state_dict, under PyTorch's names.

A checkpoint of a run (`save_run` / `load_run`): one .npz file (a zip of .npy arrays) with a
`manifest.json` member beside the arrays.

    arrays     the weights under PyTorch's names (model.state_dict()), and, for a run stopped inside
               an epoch, the carried hidden state as `state.l{k}.{j}`
    manifest   JSON (MANIFEST_KEYS): format and version, the run's config, vocabulary, epoch, position
               inside the epoch (batch, loss_sum, tokens, seconds), the data iterator's RNG state, the
               metrics so far (history), the best validation perplexity (best_val); and the optimiser's
               step count (optimizer_t, its buffers are arrays `optimizer.*`) and the dropout generator's
               state (dropout_rng), which a checkpoint of an older scratchrnn lacks (then: SGD, no dropout)

No pickle anywhere: np.load(..., allow_pickle=False) opens it, and opening a checkpoint from
elsewhere runs no code. Written atomically: a temporary file in the same folder, flushed and
fsynced, then renamed over the old one; a crash at any moment leaves the old checkpoint or the new one.
"""
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .backend import numpy_blas_threads, processor, to_numpy
from .data import Vocab
from .errors import CheckpointError, TrainingDiverged
from .model import model_from_config, state_dict_shapes
from .train import EpochPosition

FORMAT = "scratchrnn-checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_KEYS = ("config", "vocab", "epoch", "batch", "loss_sum", "tokens", "seconds", "loader_rng", "history",
                 "best_val")


TEMPORARY = ".tmp"                      # atomic_write's temporary file beside `name`: .{name}.{random}.tmp


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, flush and fsync it, then rename it over `path`
    (and fsync the folder, so that the rename itself survives a crash). A reader, or a crash at any
    moment, sees the old file or the new one, never half of one; on an error the old file stays. A file that
    cannot be written (a full disk, a folder gone or made read-only during a run) is a CheckpointError: one line
    that says so."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY, dir=path.parent)
    except OSError as e:
        raise cannot_write(path, e) from None
    try:
        os.fchmod(fd, created_mode())                 # mkstemp's 0600 would keep a run from the others who may read it
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:                                              # renamed already, or its folder is gone
            pass
        if isinstance(e, OSError):
            raise cannot_write(path, e) from None
        raise


def created_mode():
    """The mode open() gives a new file, 0666 less the process's umask (0644 under the usual 022): a run's files can be
    read by whom the user's other files can. The umask is read by setting it, and set back at once."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def unfinished_writes(folder, names):
    """The temporary files atomic_write left in `folder` for files called `names`, unfinished: a process killed
    while it wrote (SIGKILL, the machine's power) cannot remove its own. A training holding the folder (the one
    process that writes there) removes them: each is as large as a checkpoint, and every such kill left one more."""
    folder = Path(folder)
    return sorted(p for name in names for p in folder.glob(f".{name}.*{TEMPORARY}") if p.is_file())


def cannot_write(path, error):
    path = Path(path)
    if path.exists():
        kept = "the one written before is kept"
    elif path.parent.is_dir():
        kept = "none had been written yet"
    else:
        kept = f"its folder {str(path.parent)!r} is gone"
    return CheckpointError(f"cannot write {str(path)!r} ({error.strerror or error}); {kept}")


def save_checkpoint(path, arrays, manifest):
    manifest = dict(manifest, format=FORMAT, version=VERSION)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            for name, array in arrays.items():
                with z.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            z.writestr(MANIFEST, json.dumps(manifest, indent=1))

    atomic_write(path, write)


def load_checkpoint(path):
    """-> (arrays dict, manifest dict). Every way a file can be wrong is one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if MANIFEST not in names and "fc.weight.npy" in names:      # save_weights' (an example's --save)
                raise CheckpointError(f"{str(path)!r} holds a model's weights alone (what an example's --save writes, "
                                      f"for PyTorch's load_state_dict), without the vocabulary and config of a run's "
                                      f"checkpoint; a run of scratchrnn train --out DIR has them (the book's recipe: "
                                      f"--optimizer sgd --dropout 0 --charset book --max-tokens 10000)")
            if MANIFEST not in names:
                raise CheckpointError(f"{str(path)!r} is not a scratchrnn checkpoint (no {MANIFEST})")
            manifest = json.loads(z.read(MANIFEST))
            arrays = {}
            for name in names:
                if name.endswith(".npy"):
                    with z.open(name) as member:
                        arrays[name[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
    except CheckpointError:
        raise
    except PermissionError as e:                 # (another account's run: not a damaged file, as it said)
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read ({e.strerror})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError, UnicodeDecodeError,
            ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a scratchrnn checkpoint")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {manifest.get('version')}, "
                              f"this scratchrnn reads version {VERSION}")
    return arrays, manifest


# ----------------------------------------------------------------------------------------------
# A run's checkpoint: what is written, and how it is read back
# ----------------------------------------------------------------------------------------------

def save_run(path, model, vocab, config, epoch, loader_rng, history, best_val, position=None, optimizer=None,
             text_id=None, steps=(), validation_s=None, writes_s=None):
    """Write a run's checkpoint: the weights, the carried state of a run stopped inside an epoch
    (`position`, an EpochPosition), the optimiser's buffers and step count, and the manifest that lets
    `load_run` continue it exactly (the schedule's position is the epoch and the minibatch; text_id, the
    manifest keys `corpus_digest` and `corpus_files` (data.corpus_digest of the text it trains on,
    data.file_digest of each of its files), lets a resume check that the text is the same, and say which file changed).
    steps: the rows measured inside the epochs (steps.csv), kept as history is; a checkpoint without them has none.
    validation_s: how long the run's last validation took, writes_s how long its latest writes of best.npz and of
    last.npz with the metrics and plot ({"best": s, "last": s}): a resume's --max-minutes leaves time for them;
    optional. engine_name: the engine's own name (model.engine_name: "fast (Numba) with MKL"), blas_threads: the
    threads of the CPU's BLAS (backend.numpy_blas_threads; the engine's GEMMs run on as many), and processor: the CPU
    or GPU (backend.processor), which tell a resume whether it runs the same sums."""
    arrays = model.state_dict()
    if optimizer is not None:
        arrays.update(optimizer.state_dict())
    if not all(np.isfinite(a).all() for a in arrays.values()):       # a checkpoint no resume would take
        raise TrainingDiverged("training diverged: the weights became NaN or infinite; lower --lr or keep clipping on "
                               "(theta)")
    if position is not None and position.state is not None:
        for k, layer_state in enumerate(position.state):
            for j, a in enumerate(layer_state):
                arrays[f"state.l{k}.{j}"] = to_numpy(a)
    save_checkpoint(path, arrays, dict(
        config=config, vocab=vocab.idx_to_token, epoch=epoch, batch=position.batch if position else 0,
        loss_sum=float(position.loss_sum) if position else 0.0, tokens=position.tokens if position else 0,
        seconds=position.seconds if position else 0.0, loader_rng=loader_rng, history=history,
        best_val=None if best_val == float("inf") else best_val, optimizer_t=optimizer.t if optimizer else 0,
        dropout_rng=model.dropout_rng.bit_generator.state, steps=list(steps), validation_s=validation_s,
        writes_s=writes_s, engine_name=model.engine_name, blas_threads=numpy_blas_threads(),
        processor=processor(model.device), **(text_id or {})))


def load_run(path):
    """-> (arrays, manifest) of a run's checkpoint, the manifest checked for every key `save_run` writes.
    A config of format version 1 may say engine 'auto', which meant 'fast': it is read as 'fast'."""
    arrays, manifest = load_checkpoint(path)
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing or not isinstance(manifest["config"], dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no {(missing or ['config'])[0]!r} in its manifest")
    if manifest["config"].get("engine") == "auto":
        manifest["config"]["engine"] = "fast"
    return arrays, manifest


def weights_in(arrays):
    """The weight arrays of a checkpoint (without the carried hidden state `state.*` and the optimiser's
    buffers `optimizer.*`)."""
    return {k: v for k, v in arrays.items() if not k.startswith(("state.", "optimizer."))}


def with_new_tokens(weights, fresh):
    """A run's weights (PyTorch's names) for a model whose vocabulary grew at its end (train --init-from on a text
    with tokens the run never saw; data.Vocab.grown_by): in each array with a vocabulary axis, the run's tokens keep
    their weights and the new ones take `fresh`'s, the grown model's as initialised; every other array is the
    run's. The run's block is the leading one along every axis, since the new tokens come last."""
    grown = {}
    for key, old in weights.items():
        grown[key] = np.array(fresh[key], dtype=old.dtype)
        grown[key][tuple(slice(0, n) for n in old.shape)] = old
    return grown


def position_in(arrays, manifest, model):
    """Where a run stopped inside an epoch, as an EpochPosition with the carried state on the model's device;
    None for a run stopped at the end of an epoch. A random-iteration run carries no state."""
    if manifest["batch"] == 0:
        return None
    state = None
    if not manifest["config"].get("random_iter"):
        try:
            state = [tuple(model.xp.asarray(arrays[f"state.l{k}.{j}"]) for j in range(len(s)))
                     for k, s in enumerate(model.begin_state(1))]
        except KeyError as e:
            raise CheckpointError(f"checkpoint stopped inside an epoch lacks its carried state {e}") from None
    return EpochPosition(manifest["batch"], state, model.dtype.type(manifest["loss_sum"]), manifest["tokens"],
                         manifest["seconds"])


def check_arrays(arrays, config, vocab_size, path):
    """The checkpoint's weight arrays against the shapes its manifest's config implies, before any model is
    built: a manifest that does not agree with its own arrays (an absurd size included) is one line."""
    try:
        expected = state_dict_shapes(config, vocab_size)
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} has a bad config in its manifest ({e})") from None
    weights = weights_in(arrays)
    for key, shape in expected.items():
        if key not in weights:
            raise CheckpointError(f"checkpoint {str(path)!r} lacks the weights {key!r} its manifest's model has")
        if tuple(weights[key].shape) != tuple(shape):
            raise CheckpointError(f"checkpoint {str(path)!r}: weights {key!r} have shape {tuple(weights[key].shape)}, "
                                  f"its manifest's model needs {tuple(shape)}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise CheckpointError(f"checkpoint {str(path)!r} has weights {extra[0]!r} its manifest's model lacks")


def model_from_checkpoint(arrays, manifest, device="cpu", path="checkpoint"):
    """A model with a checkpoint's config and weights, and its vocabulary. The arrays are checked against
    the manifest before the model is built; weights that are NaN or infinite are refused."""
    config = manifest["config"]
    try:
        vocab = Vocab(idx_to_token=manifest["vocab"], token=config["tokens"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint manifest is missing or has a bad config entry ({e})") from None
    check_arrays(arrays, config, len(vocab), path)
    model = model_from_config(config, len(vocab), device)
    model.load_state_dict(weights_in(arrays))
    return model, vocab


# ----------------------------------------------------------------------------------------------
# Weights alone: a plain .npz under PyTorch's names
# ----------------------------------------------------------------------------------------------

def save_weights(model, path):
    """Write model.state_dict() to an .npz file atomically (temporary file, fsync, rename)."""
    atomic_write(path, lambda f: np.savez(f, **model.state_dict()))


def load_weights(model, path):
    """Load an .npz of weights under PyTorch's names into the model (every key checked before any copy)."""
    model.load_state_dict(read_npz(path))


def read_npz(path):
    """Read every array of an .npz file (no pickle: opening a file from elsewhere runs no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {key: f[key] for key in f.files}
    except PermissionError as e:
        raise CheckpointError(f"weights file {str(path)!r} cannot be read ({e.strerror})") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"weights file {str(path)!r} is truncated or corrupted ({e})") from None
