"""Where Numba keeps the compiled kernels (`cache=True`), chosen before the first kernel is declared.

Numba writes them beside their source (`__pycache__`), else in the user's cache folder (~/.cache/numba). Where
neither can be written (a read-only install run by an account whose home cannot be written: a service, a
container's user) it raised at import: "cannot cache function 'sigmoid': no locator available". Then the kernels
go to a folder of this user's own in the system's temporary one, as NUMBA_CACHE_DIR would name it (a NUMBA_CACHE_DIR
the user set is kept). A cached kernel is loaded as code, so that folder must be this user's alone: one that another
account made first, or that others may write, is passed over for a fresh private one, removed at exit.
"""
import atexit
import getpass
import os
import shutil
import stat
import tempfile
from pathlib import Path

from numba.core import config


def writable(folder):
    """Whether files can be made in `folder` (made if missing), tested as Numba tests it: by making one."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def user_cache_folder():
    """Numba's own user-wide cache folder (~/.cache/numba on Linux)."""
    from numba.misc.appdirs import AppDirs
    return AppDirs(appname="numba", appauthor=False).user_cache_dir


def private_folder(path):
    """`path` made (mode 700) or found as a folder this user owns and only this user may write; else None."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    info = os.lstat(path)
    uid = getattr(os, "getuid", lambda: info.st_uid)()
    ours = stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    return path if ours and writable(path) else None


def choose_cache_folder(source_file):
    """Leave Numba its own choice where it has one; else give it a private folder (config.CACHE_DIR). Returns the
    folder chosen, or None."""
    if config.CACHE_DIR or writable(Path(source_file).parent / "__pycache__") or writable(user_cache_folder()):
        return None
    user = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    folder = private_folder(os.path.join(tempfile.gettempdir(), f"scratchrnn-numba-{user}"))
    if folder is None:                                   # taken by another: one of this process's own
        folder = tempfile.mkdtemp(prefix="scratchrnn-numba-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    config.CACHE_DIR = folder
    return folder
