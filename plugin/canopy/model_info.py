"""What a model holds (labels, thresholds, marker labels, bands), read
through `canopy info --json`: canopy's own reading of the model's metadata
with its defaults, so the plugin never re-implements it. Results are kept
per (program, model file, size, mtime; $CANOPY_MODEL for the default model):
a dialog validating twice asks once."""
import json
import os
import subprocess

from .i18n import tr

_cache = {}


class ModelError(Exception):
    """The model cannot be described (canopy's message)."""


def _key(exe, model):
    try:
        st = os.stat(model) if model else None
    except OSError:
        st = None
    default = "" if model else os.environ.get("CANOPY_MODEL", "")   # canopy's default model
    return (exe, model, default, st.st_size if st else None, st.st_mtime_ns if st else None)


def describe(exe, model=""):
    """The "metadata" object of `canopy info --json [-m MODEL]` (model empty:
    canopy's default model). Raises ModelError with canopy's message."""
    key = _key(exe, model)
    if key in _cache:
        return _cache[key]
    args = [exe, "info", "--json"] + (["-m", model] if model else [])
    try:
        proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ModelError(tr("cannot run {0} info: {1}").format(exe, e))
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise ModelError(message or tr("{0} info exited with status {1}").format(
            exe, proc.returncode))
    try:
        meta = json.loads(proc.stdout.decode("utf-8", "replace"))["metadata"]
        meta["labels"] = [str(x) for x in meta["labels"]]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelError(tr("{0} info --json gave no model metadata ({1}); is this "
                            "canopy too old for the plugin?").format(exe, e))
    _cache[key] = meta
    return meta
