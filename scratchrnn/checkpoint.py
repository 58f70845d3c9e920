"""Checkpoints: one .npz file (a zip of .npy arrays) with a `manifest.json` member beside the arrays.

    arrays     the weights under PyTorch's names (model.state_dict()), and, for a run stopped inside
               an epoch, the carried hidden state as `state.l{k}.{j}`
    manifest   JSON: format and version, model and training config, vocabulary, epoch, position inside
               the epoch, the data iterator's RNG state, the metrics so far, the best validation score

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

from .errors import CheckpointError

FORMAT = "scratchrnn-checkpoint"
VERSION = 1
MANIFEST = "manifest.json"


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, flush and fsync it, then rename it over `path`
    (and fsync the folder, so that the rename itself survives a crash). A reader, or a crash at any
    moment, sees the old file or the new one, never half of one; on an error the old file stays."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError, UnicodeDecodeError,
            ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a scratchrnn checkpoint")
    if manifest.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format version {manifest.get('version')}, "
                              f"this scratchrnn reads version {VERSION}")
    return arrays, manifest
