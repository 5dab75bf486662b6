"""A run killed with SIGKILL while it writes (issue 13, item 12): finished
files used to stay under their final names without a manifest, and the
temporary files were never cleaned up.

canopy classify is killed at a spread of moments after its last chip
(while it writes probabilities, masks, split masks, GeoJSON, quick-look,
STAC, manifest, or after it is done). After every kill the output folder
holds either none of the scene's files or all of them, with a manifest whose
checksums match: never finals without a manifest. The next run finishes the
scene and removes the private folders the killed runs left; it leaves alone
the ones it cannot prove are canopy's and abandoned (another user's, a live
process's, another host's from this week, a name not in canopy's form, a
link), and never follows a link.
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
from osgeo import gdal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scene"))
import canopytest as ct  # noqa: E402
import scenes as S  # noqa: E402
import test_classify_lib as L  # noqa: E402

gdal.UseExceptions()
GT = [500000.0, 3.0, 0.0, 8900000.0, 0.0, -3.0]
DELAYS = [0.0, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1.0, 1.5]


def scene(path, size):
    rng = np.random.default_rng(3)
    S.make_scene(path, rng.integers(0, 256, (3, size, size), dtype=np.uint8), GT, 32720,
                 options=["TILED=YES"])


def finals(out):
    return sorted(f for f in os.listdir(out) if f.startswith("s."))


def privates(out):
    return sorted(f for f in os.listdir(out) if f.startswith(".canopy-"))


def consistent(out):
    """None or all of the scene's files; 'none', 'all' or raises."""
    got = finals(out)
    if not got:
        return "none"
    assert "s.manifest.json" in got, ("finals without a manifest", got)
    man = json.load(open(os.path.join(out, "s.manifest.json")))
    listed = {o["file"]: o["sha256"] for o in man["outputs"]}
    for f, h in listed.items():
        p = os.path.join(out, f)
        assert os.path.isfile(p), ("listed but missing", f)
        assert hashlib.sha256(open(p, "rb").read()).hexdigest() == h, ("checksum", f)
    tops = {f.split("/")[0] for f in listed} | {"s.manifest.json"}
    assert set(got) == tops, ("files not in the manifest", set(got) ^ tops)
    return "all"


def kill_after_chips(args, delay):
    """Starts canopy, SIGKILLs it `delay` s after its last chip."""
    p = subprocess.Popen([ct.CANOPY] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        e = json.loads(line)
        if e["event"] == "progress" and e["done"] >= 1.0:
            break
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    p.stdout.close()
    return p.returncode


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def fnv1a(text):
    h = 2166136261
    for c in text.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def private(out, pid, start, suffix, host=None, boot=None):
    """A folder named as canopy names its private folders (the maker's host,
    boot, pid and start time in the name), with a half-written file."""
    if boot is None:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
    name = ".canopy-%08x%08x-%d-%d-%s" % (fnv1a(host or socket.gethostname()), fnv1a(boot),
                                         pid, start, suffix)
    path = os.path.join(out, name)
    os.mkdir(path, 0o700)
    with open(os.path.join(path, "s.probs.tif"), "w") as f:
        f.write("half-written")
    return name


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=4, input_size=32)
        sc = os.path.join(d, "s.tif")
        scene(sc, 1536)
        out = os.path.join(d, "out")
        args = ["classify", "-m", tiny.path, "--chip", 32, "--progress=jsonl", "--split-masks",
                "-o", out, sc]
        args = [str(a) for a in args]
        seen = {"none": 0, "all": 0}
        left = 0
        for i, delay in enumerate(DELAYS):
            if os.path.isdir(out):  # each kill on a scene not yet done
                for f in finals(out):
                    p = os.path.join(out, f)
                    if os.path.isdir(p):
                        for g in os.listdir(p):
                            os.unlink(os.path.join(p, g))
                        os.rmdir(p)
                    else:
                        os.unlink(p)
            rc = kill_after_chips(args + ["--min-valid", "0.%02d" % (50 + i)], delay)
            state = consistent(out)
            seen[state] += 1
            left = max(left, len(privates(out)))
            print("killed %.3f s after the last chip (exit %d): %s of the scene's files, %d "
                  "private folders" % (delay, rc, state, len(privates(out))))
        # Killed while writing at least once, else the test proved nothing.
        assert seen["none"] > 0 and left > 0, seen

        # Folders the next run must leave alone: another user's, a live
        # process's, another host's (recent), a link, a name not of this form.
        me, t0 = os.getpid(), start_time(os.getpid())
        other = private(out, dead_pid(), 1, "Other1")
        os.chown(os.path.join(out, other), 65534, 65534)
        keep = [other, private(out, me, t0, "Alive1"),
                private(out, dead_pid(), 1, "Frgn01", host="another-host.example")]
        victim = os.path.join(d, "victim")
        os.mkdir(victim)
        with open(os.path.join(victim, "keep.txt"), "w") as f:
            f.write("victim")
        link = private(d, dead_pid(), 1, "Link01")  # its name, as a link here
        os.symlink(victim, os.path.join(out, link))
        os.mkdir(os.path.join(out, ".canopy-Legacy"), 0o700)
        keep += [link, ".canopy-Legacy"]
        # ... and ones it must remove: a dead process's, a previous boot's,
        # another host's untouched for more than a week.
        gone = [private(out, dead_pid(), 1, "Dead01"),
                private(out, me, t0, "Boot01", boot="00000000-0000-0000-0000-000000000000")]
        old = private(out, dead_pid(), 1, "Frgn02", host="another-host.example")
        os.utime(os.path.join(out, old), (time.time() - 8 * 86400,) * 2)
        gone.append(old)

        r = ct.canopy("classify", "-q", "-m", tiny.path, "--chip", 32, "--split-masks", "-o",
                      out, sc)
        assert consistent(out) == "all"
        rest = privates(out)
        assert rest == sorted(keep), (rest, sorted(keep))
        assert os.listdir(victim) == ["keep.txt"], os.listdir(victim)
        assert os.path.isfile(os.path.join(out, keep[2], "s.probs.tif"))
        print("next run: %s; left alone: %s" % (r.stdout.strip()[:60], rest))


ct.main(test)
