"""canopy alerts: SIGKILL during an update (the test hook
CANOPY_TEST_ALERTS_KILL stops the process with SIGKILL just before the
commit, and just after state.json is renamed into place) leaves the
previous state intact, and the next run correct: the same alerts as a state
built without interruption. Also: an update waits for the lock of another."""
import fcntl
import os
import signal
import subprocess
import time

import numpy as np

import alertslib as al
from canopytest import CANOPY, canopy, main, tmpdir
from test_alerts_rule import DATES, write_series

FILES = ("state.json", "alerts.tif", "alerts.geojson", "alerts.qml")


def snapshot(state):
    snap = {n: open(os.path.join(state, n), "rb").read() for n in FILES}
    snap["obs"] = sorted(os.listdir(os.path.join(state, "obs")))
    return snap


def killed_add(state, path, point):
    env = dict(os.environ, CANOPY_TEST_ALERTS_KILL=point)
    p = subprocess.run([CANOPY, "alerts", "add", state, path], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == -signal.SIGKILL, "the hook did not kill canopy (exit %d): %s" % (
        p.returncode, p.stderr)


def same_alerts(a, b, when):
    la, va = al.read_alerts(a)
    lb, vb = al.read_alerts(b)
    assert la == lb and np.array_equal(va, vb), "%s: alerts.tif differs from a clean run" % when


def test():
    with tmpdir() as t:
        paths = write_series(t)
        ref = os.path.join(t, "ref")
        for p in paths:
            canopy("alerts", "add", "--no-changes", ref, p)
        ref4 = os.path.join(t, "ref4")
        for p in paths[:4]:
            canopy("alerts", "add", "--no-changes", ref4, p)

        state = os.path.join(t, "state")
        for p in paths[:3]:
            canopy("alerts", "add", "--no-changes", state, p)
        before = snapshot(state)
        killed_add(state, paths[3], "before-commit")
        assert snapshot(state) == before, "a kill before the commit changed the state"
        assert [n for n in os.listdir(state) if n.startswith(".canopy-")], \
            "the killed update left no temporary folder (was the hook reached?)"
        canopy("alerts", "add", "--no-changes", state, paths[3])
        same_alerts(state, ref4, "after a kill before the commit and a new run")
        assert not [n for n in os.listdir(state) if n.startswith(".canopy-")], os.listdir(state)

        before = snapshot(state)
        killed_add(state, paths[4], "after-commit")
        now = snapshot(state)
        assert now["state.json"] != before["state.json"], "state.json was not committed"
        assert now["alerts.tif"] == before["alerts.tif"], "outputs moved before the hook"
        # The next run (the same scene again) finds the outputs behind the
        # state and remakes them.
        p = canopy("alerts", "add", "--no-changes", state, paths[4])
        assert "already in the alert state" in p.stderr, p.stderr
        same_alerts(state, ref, "after a kill after the commit and a new run")
        assert len(os.listdir(os.path.join(state, "obs"))) == len(DATES), \
            os.listdir(os.path.join(state, "obs"))

        # The lock: an update waits while another process holds it.
        fd = os.open(os.path.join(state, ".lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([CANOPY, "alerts", "add", "--no-changes", state, paths[0]],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None, "canopy did not wait for the lock"
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "already in the alert state" in err, err

        # A lock file that is a symbolic link is refused, nothing written through it.
        evil = os.path.join(t, "evil")
        os.mkdir(evil)
        target = os.path.join(t, "target")
        open(target, "w").close()
        os.symlink(target, os.path.join(evil, ".lock"))
        p = canopy("alerts", "add", evil, paths[0], check=False)
        assert p.returncode == 1 and ".lock" in p.stderr, (p.returncode, p.stderr)
        assert not os.path.exists(os.path.join(evil, "state.json"))


main(test)
