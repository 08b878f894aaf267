"""Files written whole or not at all.

A run killed while writing a manifest, a fold split or a predictions file must not
leave half a file that a rerun would take as finished: each is written to a
temporary file beside it and moved into place with ``os.replace`` (atomic on one
file system).

Example
-------
>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "data.json")
>>> write_json_atomic(path, {"b": 1, "a": 2}, indent=None, sort_keys=True)
>>> open(path).read(), os.path.exists(path + ".tmp")
('{"a": 2, "b": 1}', False)
"""

import json
import os


def write_json_atomic(path, obj, **dump_options):
    """``json.dump(obj, f, **dump_options)`` into ``path``, atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, **dump_options)
    os.replace(tmp, path)
