"""Files written whole or not at all, and preparation shared by concurrent processes.

A run killed while writing a manifest, a fold split or a predictions file must not
leave half a file that a rerun would take as finished: each is written to a
temporary file beside it and moved into place with ``os.replace`` (atomic on one
file system). The temporary name is unique to the writer, so two processes writing
the same file at once (two folds of a cluster job array) never write into, or move
away, each other's temporary file: the last complete file wins.

Preparation that several processes share (the MUSAN pools of a CV run) runs under
:func:`file_lock`: the first process prepares, the others wait, then find it done.

Example
-------
>>> import tempfile, os
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "data.json")
>>> write_json_atomic(path, {"b": 1, "a": 2}, indent=None, sort_keys=True)
>>> open(path).read(), os.listdir(folder)
('{"a": 2, "b": 1}', ['data.json'])
>>> with file_lock(os.path.join(folder, ".lock")):
...     write_json_atomic(path, [1])
>>> open(path).read()
'[1]'
"""

import contextlib
import fcntl
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: the permissions open() gives a new file


@contextlib.contextmanager
def atomic_open(path, mode="w", **open_options):
    """``open(path, mode)`` into a temporary file unique to this writer, moved to ``path``
    when the ``with`` block ends without an exception (removed otherwise)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix=os.path.basename(path) + ".", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide results from a group
    try:
        with os.fdopen(fd, mode, **open_options) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json_atomic(path, obj, **dump_options):
    """``json.dump(obj, f, **dump_options)`` into ``path``, atomically."""
    with atomic_open(path) as f:
        json.dump(obj, f, **dump_options)


@contextlib.contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block;
    other processes asking for it wait. POSIX ``flock``: local disks and NFSv4."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
