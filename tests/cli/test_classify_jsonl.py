"""canopy classify --progress=jsonl: the v1 event stream (README, "Event
stream"), checked as a program reading it line by line with a JSON parser
would:

- every stdout line is one JSON object with "v": 1 and an "event"; nothing
  else is on stdout; events come in the contract's order (run_start, then per
  scene scene_start, progress..., scene_done or scene_error, then run_done);
- scene_done's chips, positives and outputs match the scene's manifest (read
  independently with the json module), on the first run and when skipped;
- a failing scene carries status and the message printed on stderr, and is
  told apart from a scene whose name is a prefix of it plus ": ...";
- scene names with a newline and quotes stay one JSON line;
- SIGTERM part way: scene_error "cancelled", run_done with exit 1, no output
  left, the process ends by the signal;
- a usage error: exactly one run_error line, exit 2;
- --list: one "scene" event per scene as a run would expand a folder, then
  run_done, exit 0.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scene"))
import canopytest as ct  # noqa: E402
import test_classify_lib as L  # noqa: E402

GT = [400020.0, 3.0, 0.0, 8950020.0, 0.0, -3.0]


def events(stdout):
    """Every line -> a dict with v = 1 (asserted)."""
    out = []
    for line in stdout.split("\n")[:-1]:
        e = json.loads(line)
        assert isinstance(e, dict) and e.get("v") == 1 and isinstance(e.get("event"), str), line
        out.append(e)
    assert stdout.endswith("\n") or stdout == "", repr(stdout[-80:])
    return out


def check_order(evs):
    """run_start, (scene_start, progress*, scene_done|scene_error)*, run_done;
    run-wide scene_error/warning (no index) may follow run_start."""
    names = [e["event"] for e in evs]
    assert names[0] == "run_start" and names[-1] == "run_done", names
    i, cur = 1, None
    for e in evs[1:-1]:
        k = e["event"]
        if k == "scene_start":
            assert cur is None, names
            cur = e["index"]
            assert e["count"] == evs[0]["scenes"], e
        elif k == "progress":
            assert cur == e["index"] and 0.0 <= e["done"] <= 1.0, e
        elif k in ("scene_done", "scene_error") and "index" in e:
            assert cur == e["index"], (cur, e)
            cur = None
        elif k in ("scene_error", "warning"):
            assert cur is None and "index" not in e, e
        else:
            raise AssertionError("unexpected event %r" % e)
        i += 1
    assert cur is None, names


def check_against_manifest(e, labels):
    m = L.load_manifest(e["outputs"]["manifest"])
    assert e["chips"]["total"] == m["chips"]["cells"], (e, m["chips"])
    assert e["chips"]["classified"] == m["chips"]["classified"], (e, m["chips"])
    assert e["chips"]["nodata"] == m["chips"]["skipped"], (e, m["chips"])
    assert e["chips"]["obscured"] == 0, e
    assert e["positives"] == m["positive_chips"] and sorted(e["positives"]) == sorted(labels), e
    for kind in ("probs", "masks", "markers", "manifest"):
        assert os.path.isfile(e["outputs"][kind]), e["outputs"]
    listed = {os.path.basename(o["file"]) for o in m["outputs"]}
    for kind in ("probs", "masks", "markers"):
        assert os.path.basename(e["outputs"][kind]) in listed, (e["outputs"], listed)
    assert e["name"] == m["scene"], (e["name"], m["scene"])


def run_stream(*args):
    p = L.classify("--progress=jsonl", *args, check=False)
    return p, events(p.stdout)


def test_batch(d, tiny, common):
    good = []
    for i, (w, h, name) in enumerate(((256, 200, "a.tif"), (160, 320, 'new\nline "q".tif'),
                                      (192, 192, "bad.tif: 4 chips.tif"))):
        p = os.path.join(d, name)
        L.make_scene(p, L.texture(60 + i, 3, h, w), GT, 32720)
        good.append(p)
    bad = os.path.join(d, "bad.tif")
    with open(bad, "wb") as f:
        f.write(b"II*\x00 not a TIFF past its header")
    out = os.path.join(d, "out")
    p, evs = run_stream(*common, "-o", out, good[0], bad, good[1], good[2])
    assert p.returncode == 1, (p.returncode, p.stderr)
    check_order(evs)
    start = evs[0]
    assert start["scenes"] == 4 and start["model"] == tiny.path and start["outdir"] == out, start
    assert start["precision"] == "fp32" and start["time"].endswith("Z"), start
    done = [e for e in evs if e["event"] == "scene_done"]
    errs = [e for e in evs if e["event"] == "scene_error"]
    assert [e["scene"] for e in done] == [good[0], good[1], good[2]], done
    assert [e["index"] for e in done] == [1, 3, 4], done
    assert [e["name"] for e in done] == ["a", 'new\nline "q"', "bad.tif: 4 chips"], done
    for e in done:
        assert e["status"] == "ok" and "reason" not in e and e["seconds"] >= 0, e
        assert e["summary"] in p.stderr, (e["summary"], p.stderr)
        check_against_manifest(e, tiny.labels)
    assert len(errs) == 1 and errs[0]["scene"] == bad and errs[0]["index"] == 2, errs
    assert errs[0]["status"] in ("format", "io") and errs[0]["message"], errs
    assert ("canopy classify: %s\n" % errs[0]["message"]) in p.stderr, p.stderr
    assert not [f for f in os.listdir(out)
                if f.startswith("bad.") and not f.startswith("bad.tif: ")], os.listdir(out)
    prog = [e for e in evs if e["event"] == "progress" and e["index"] == 1]
    assert prog and prog[0]["done"] == 0.0 and prog[-1]["done"] == 1.0, prog
    assert len(prog) <= 102, len(prog)
    fin = evs[-1]
    assert (fin["scenes"], fin["ok"], fin["skipped"], fin["failed"], fin["exit"]) == \
        (4, 3, 0, 1, 1), fin

    # Again: the three good scenes are up to date, with their manifest's counts.
    p, evs = run_stream(*common, "-o", out, good[0], good[1], good[2])
    assert p.returncode == 0, p.stderr
    check_order(evs)
    done = [e for e in evs if e["event"] == "scene_done"]
    assert [(e["status"], e["reason"]) for e in done] == [("skipped", "up to date")] * 3, done
    for e in done:
        check_against_manifest(e, tiny.labels)
    assert not [e for e in evs if e["event"] == "progress"], evs
    assert evs[-1]["skipped"] == 3 and evs[-1]["ok"] == 0 and evs[-1]["exit"] == 0, evs[-1]
    print("batch: order, counts = manifests, errors with status, odd names one line each")
    return good


def test_list(d, good, common):
    folder = os.path.join(d, "in")
    os.mkdir(folder)
    for g in good:
        os.symlink(g, os.path.join(folder, os.path.basename(g)))
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("not a scene\n")
    p, evs = run_stream("--list", "-o", os.path.join(d, "never"), folder)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)
    assert [e["event"] for e in evs] == ["scene"] * 3 + ["run_done"], evs
    want = sorted(os.path.join(folder, os.path.basename(g)) for g in good)
    assert [e["scene"] for e in evs[:3]] == want, evs
    assert [e["name"] for e in evs[:3]] == [os.path.splitext(os.path.basename(w))[0]
                                            for w in want], evs
    assert evs[-1]["scenes"] == 3 and evs[-1]["exit"] == 0, evs[-1]
    assert not os.path.exists(os.path.join(d, "never"))
    # The same folder classified: the same scenes in the same order.
    p, run_evs = run_stream(*common, "-o", os.path.join(d, "out_list"), folder)
    assert p.returncode == 0, p.stderr
    assert [e["scene"] for e in run_evs if e["event"] == "scene_start"] == want
    print("--list: the folder expanded as a run expands it")


def test_usage(d, common):
    for args in (["--chip", "zero"], ["--progress=yes"], [], ["--frobnicate"]):
        p, evs = run_stream(*common, "-o", os.path.join(d, "u"), *args,
                            *([] if args == [] else ["x.tif"]))
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert len(evs) == 1 and evs[0]["event"] == "run_error", (args, evs)
        assert evs[0]["status"] == "usage" and evs[0]["exit"] == 2, evs
        assert evs[0]["message"] and evs[0]["message"] in p.stderr, (evs, p.stderr)
    print("usage errors: one run_error line, exit 2")


def test_cancel(d, tiny, common):
    big = os.path.join(d, "big.tif")
    L.make_scene(big, L.texture(9, 3, 2400, 2400), GT, 32720)
    out = os.path.join(d, "out_cancel")
    proc = subprocess.Popen([ct.CANOPY, "classify", "--progress=jsonl", *common, "-o", out, big],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "progress" and seen[-1]["done"] > 0:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    evs = seen + events(rest)
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err)
    check_order(evs)
    errs = [e for e in evs if e["event"] == "scene_error"]
    assert len(errs) == 1 and errs[0]["status"] == "cancelled" and errs[0]["scene"] == big, evs
    assert evs[-1]["exit"] == 1 and evs[-1]["failed"] == 1, evs[-1]
    assert os.listdir(out) == [], os.listdir(out)
    print("SIGTERM: scene_error cancelled, run_done exit 1, nothing left")


def run():
    with ct.tmpdir() as d:
        tiny = L.Tiny(os.path.join(d, "tiny.onnx"), seed=5, input_size=32)
        common = ["-m", tiny.path, "--chip", "32", "--threads", "1"]
        good = test_batch(d, tiny, common)
        test_list(d, good, common)
        test_usage(d, common)
        test_cancel(d, tiny, common)


ct.main(run)
