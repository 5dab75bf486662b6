"""Shared helpers for canopy's Python tests (run by automake's harness).

Exit codes follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.
"""
import os
import subprocess
import sys
import tempfile

SKIP = 77
HARD_ERROR = 99

CANOPY = os.environ.get("CANOPY", "canopy")
SRCDIR = os.environ.get("CANOPY_SRCDIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDDIR = os.environ.get("CANOPY_BUILDDIR", SRCDIR)
PYTHON3 = os.environ.get("PYTHON3", sys.executable)


def script(name):
    """Path of a script under scripts/."""
    return os.path.join(SRCDIR, "scripts", name)


def run(args, check=True, **kw):
    """Runs a command, returns CompletedProcess with text stdout/stderr."""
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def canopy(*args, check=True, **kw):
    return run([CANOPY] + [str(a) for a in args], check=check, **kw)


def tmpdir(prefix="canopy-test-"):
    """A temporary folder removed at exit (tempfile.TemporaryDirectory)."""
    return tempfile.TemporaryDirectory(prefix=prefix)


def main(fn):
    """Runs fn(); AssertionError -> exit 1 with its message, other
    exceptions -> 99, SystemExit passes through."""
    try:
        fn()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        raise
    except BaseException:
        import traceback
        traceback.print_exc()
        sys.exit(HARD_ERROR)
    sys.exit(0)
