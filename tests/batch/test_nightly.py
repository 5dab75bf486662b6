"""scripts/canopy-nightly, the cron wrapper, run with /bin/sh:
- an inbox with two scenes, a corrupt one and a note: exit 1; the two scenes'
  outputs are those of a direct canopy classify (GDAL/OGR) and the scenes are
  moved to INBOX/done; the corrupt one stays, with no output; the day's log
  file has a start line, a line per scene, the error and an end line, all
  timestamped; the end line is also on stderr (cron mails it), stdout empty;
- the next nights: the corrupt scene fails again (exit 1, outputs untouched);
  only a note left: nothing to do (exit 0); an empty inbox: nothing to do
  without running canopy;
- --keep and a log file: a rerun finds every scene up to date, rewrites
  nothing, leaves the inbox alone, appends to the log;
- a run while another holds the lock exits 3 at once (and after --wait 1),
  naming the holder's PID, and does nothing; the first run then completes;
- SIGTERM while canopy runs: exit 5, canopy stopped, no output, the lock free;
- usage errors exit 2, canopy classify refusing the options after -- exits 2,
  a missing canopy or one that does not run exits 4, each with its log line;
- attacks on the lock in a shared output folder: a symbolic link planted
  there (to a file, a folder, a FIFO, nowhere), a file, a folder writable by
  others or of another user: exit 2 naming it, nothing run, the victim
  untouched (content, inode, mtime), with scenes in the inbox or none;
- hostile names: 'bad.tif' failing beside 'bad.tif: 4 chips.tif', a newline
  in a good scene's name and one in a corrupt scene's name that forges a log
  line: only scenes whose own scene_done says done move, the log has only
  this run's lines, newlines escaped;
- --alerts DIR and --report FILE reach canopy (a stub canopy speaking the
  event stream): the alert summary is logged and, with -l, on stdout;
  a failing report makes the status 1;
- the example crontab line is in the README.
"""
import os
import re
import shutil
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import batchlib as B  # noqa: E402
import canopytest as ct  # noqa: E402
import services as S  # noqa: E402

NIGHTLY = "canopy-nightly"
J = os.path.join

# canopy held at a gate: it waits for the file $GATE before running the real
# canopy, so that a run can be caught while canopy works.
GATED_CANOPY = """#!/bin/sh
case ${1:-} in --version) exec "$CANOPY_REAL" "$@" ;; esac
echo $$ >"$GATE.started"
while [ ! -e "$GATE" ]; do sleep 0.05; done
exec "$CANOPY_REAL" "$@"
"""


def log_runs(path):
    """{pid: [message, ...]} of a log file, in order; every line must have
    the timestamp and the canopy-nightly[PID] prefix."""
    runs = {}
    with open(path) as f:
        for line in f:
            m = B.LOG_LINE.match(line.rstrip("\n"))
            assert m, "%s: a line without the timestamp and prefix: %r" % (path, line)
            runs.setdefault(int(m.group(1)), []).append(m.group(2))
    return runs


def last_run(path):
    runs = log_runs(path)
    assert runs, "%s: empty log" % path
    msgs = list(runs.values())[-1]
    assert msgs[0].startswith("start: "), msgs
    assert msgs[-1].startswith("end: ") and re.search(r"; exit status \d \(\d+ s\)$", msgs[-1]), msgs
    return msgs


def nightly(*args, **kw):
    return B.run_script(NIGHTLY, *args, **kw)


def expect(p, status, what):
    assert p.returncode == status, "%s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
        what, p.returncode, status, p.stdout, p.stderr)


def gated(d, name):
    """(canopy script held at a gate, the gate file, the env to run it)."""
    prog = J(d, "gated-canopy")
    if not os.path.exists(prog):
        with open(prog, "w") as f:
            f.write(GATED_CANOPY)
        os.chmod(prog, 0o755)
    gate = J(d, name)
    return prog, gate, dict(os.environ, CANOPY_REAL=ct.CANOPY, GATE=gate)


def first_nights(d, ref):
    inbox, out, logs = J(d, "inbox"), J(d, "out"), J(d, "logs")
    scenes = B.make_scenes(inbox, 2)
    bad = B.make_corrupt(J(inbox, "corrupt.tif"))
    with open(J(inbox, "notes.txt"), "w") as f:
        f.write("not a scene\n")
    refin = J(d, "refin")
    os.makedirs(refin)
    for s in scenes:
        shutil.copy2(s, refin)
    B.direct([J(refin, os.path.basename(s)) for s in scenes], ref)

    p = nightly("-l", logs + "/", inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 1, "inbox with a corrupt scene")
    assert p.stdout == "", "with -l, stdout stays empty: %r" % p.stdout
    [logname] = os.listdir(logs)
    assert re.match(r"^canopy-nightly-\d{4}-\d\d-\d\d\.log$", logname), logname
    logfile = J(logs, logname)
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("canopy-nightly: end: ") and \
        "exit status 1" in err[0] and logfile in err[0], p.stderr
    msgs = last_run(logfile)
    assert msgs[0] == "start: inbox %s, output %s, lock %s/.canopy-nightly.lock" % (
        inbox, out, out), msgs[0]
    assert any(m.startswith("running canopy ") for m in msgs), msgs
    for s in scenes:
        assert sum(1 for m in msgs if m.startswith(s + ": ") and " chips (" in m) == 1, (s, msgs)
    assert any(m.startswith("canopy classify: %s: " % bad) for m in msgs), msgs
    assert not any("notes.txt" in m for m in msgs), msgs
    assert msgs[-1].startswith("end: 2 classified, 0 up to date, 2 moved to %s/done, "
                               "2 file(s) left in the inbox; canopy exit 1" % inbox), msgs[-1]
    assert msgs[-1].endswith("exit status 1 (%s" % msgs[-1].rsplit("(", 1)[1]), msgs[-1]
    assert sorted(os.listdir(inbox)) == ["corrupt.tif", "done", "notes.txt"], os.listdir(inbox)
    assert sorted(os.listdir(J(inbox, "done"))) == ["scene_0.tif", "scene_1.tif"]
    for s in scenes:
        B.assert_same_outputs(out, ref, B.name_of(s))
    B.no_outputs(out, "corrupt")
    assert not [f for f in os.listdir(out) if f.startswith(".") and "lock" not in f], os.listdir(out)
    print("night 1: exit 1, 2 scenes done and moved, the corrupt one left; log:\n  " +
          "\n  ".join(msgs))

    state = B.files_state(out)
    p = nightly("-l", logs, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 1, "the corrupt scene again")
    assert last_run(logfile)[-1].startswith("end: 0 classified, 0 up to date, 0 moved"), \
        last_run(logfile)
    assert B.files_state(out) == state, "a failing night rewrote outputs"

    os.unlink(bad)
    p = nightly("-l", logs, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "only a note in the inbox")
    assert p.stderr == "", p.stderr
    end = last_run(logfile)[-1]
    assert end.startswith("end: nothing to do: no raster in %s" % inbox), end
    os.unlink(J(inbox, "notes.txt"))
    p = nightly("-l", logs, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "empty inbox")
    msgs = last_run(logfile)
    assert msgs[-1].startswith("end: nothing to do: no scene in %s;" % inbox), msgs
    assert not any(m.startswith("running") for m in msgs), "canopy ran on an empty inbox"
    assert B.files_state(out) == state
    assert len(log_runs(logfile)) == 4, "four runs appended to the day's log"
    print("nights 2-4: corrupt again (exit 1), then nothing to do (exit 0)")
    return scenes


def keep_rerun(d, ref, scenes):
    inbox, out, log = J(d, "inbox2"), J(d, "out2"), J(d, "keep.log")
    os.makedirs(inbox)
    for s in scenes:
        shutil.copy2(J(d, "inbox", "done", os.path.basename(s)), inbox)
    p = nightly("--keep", "-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "--keep")
    assert p.stdout == "" and p.stderr == "", (p.stdout, p.stderr)
    assert last_run(log)[-1].startswith("end: 2 classified, 0 up to date, 2 file(s) left"), \
        last_run(log)
    for s in scenes:
        B.assert_same_outputs(out, ref, B.name_of(s))
    state = B.files_state(out)
    time.sleep(0.02)
    p = nightly("--keep", "-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "--keep rerun")
    msgs = last_run(log)
    assert msgs[-1].startswith("end: 0 classified, 2 up to date, 2 file(s) left"), msgs
    assert sum(1 for m in msgs if ": up to date (" in m) == 2, msgs
    assert B.files_state(out) == state, "an up-to-date rerun rewrote outputs"
    assert sorted(os.listdir(inbox)) == ["scene_0.tif", "scene_1.tif"]
    assert len(log_runs(log)) == 2
    print("--keep: rerun up to date, nothing rewritten: " + msgs[-1])
    return inbox


def lock(d, scene):
    inbox, out, log = J(d, "inbox3"), J(d, "out3"), J(d, "lock.log")
    os.makedirs(inbox)
    shutil.copy2(scene, inbox)
    prog, gate, env = gated(d, "gate1")
    a = B.popen_script(NIGHTLY, "--canopy", prog, "--keep", "-l", log, inbox, out, "--",
                       *B.CLASSIFY_OPTS, env=env)
    try:
        S.wait_until("the first run's canopy", lambda: os.path.exists(gate + ".started"), 30,
                     procs=[a])
        p = nightly("--keep", "-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
        expect(p, 3, "second run while the first holds the lock")
        assert "holds the lock %s/.canopy-nightly.lock" % out in p.stderr, p.stderr
        assert "PID %d " % a.pid in p.stderr, (a.pid, p.stderr)
        runs = log_runs(log)
        assert len(runs) == 2 and a.pid in runs, runs
        msgs = last_run(log)
        assert msgs[-1].startswith("end: another run (PID %d " % a.pid) and \
            "this run does nothing; exit status 3" in msgs[-1], msgs
        assert not any(m.startswith("running") for m in msgs), msgs
        t = time.monotonic()
        p = nightly("--wait", "1", "--keep", "-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
        waited = time.monotonic() - t
        expect(p, 3, "--wait 1 while the first run holds the lock")
        assert waited >= 0.9, "gave up after %.2f s, not 1 s" % waited
        assert os.listdir(out) == [".canopy-nightly.lock"], os.listdir(out)
        print("lock held: exit 3 (also after --wait 1, %.1f s): %s" % (waited, msgs[-1]))
    finally:
        open(gate, "w").close()
        so, se = a.communicate(timeout=120)
    assert a.returncode == 0, (a.returncode, so, se)
    assert log_runs(log)[a.pid][-1].startswith("end: 1 classified"), log_runs(log)[a.pid]
    p = nightly("--keep", "-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "after the first run ended")
    assert last_run(log)[-1].startswith("end: 0 classified, 1 up to date"), last_run(log)


def sigterm(d, scene):
    inbox, out, log = J(d, "inbox4"), J(d, "out4"), J(d, "term.log")
    os.makedirs(inbox)
    shutil.copy2(scene, inbox)
    prog, gate, env = gated(d, "gate2")
    c = B.popen_script(NIGHTLY, "--canopy", prog, "-l", log, inbox, out, "--",
                       *B.CLASSIFY_OPTS, env=env)
    try:
        S.wait_until("canopy of the run to stop", lambda: os.path.exists(gate + ".started"), 30,
                     procs=[c])
        with open(gate + ".started") as f:
            canopy_pid = int(f.read())
        os.kill(c.pid, signal.SIGTERM)
        so, se = c.communicate(timeout=60)
    finally:
        if c.poll() is None:
            c.kill()
            c.wait()
    assert c.returncode == 5, (c.returncode, so, se)
    S.wait_until("canopy stopped", lambda: not S.alive(canopy_pid), 10)
    msgs = last_run(log)
    assert msgs[-1].startswith("end: interrupted by SIGTERM: canopy stopped"), msgs
    assert msgs[-1].endswith("exit status 5 (%s" % msgs[-1].rsplit("(", 1)[1]), msgs
    assert "interrupted by SIGTERM" in se, se
    assert os.listdir(out) == [".canopy-nightly.lock"], os.listdir(out)
    assert os.listdir(inbox) == [os.path.basename(scene)], os.listdir(inbox)
    p = nightly("-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 0, "the run after SIGTERM (the lock is free)")
    assert last_run(log)[-1].startswith("end: 1 classified"), last_run(log)
    print("SIGTERM: exit 5, canopy stopped, no output; the next run takes the lock")


def usage(d, inbox):
    out, log = J(d, "out5"), J(d, "usage.log")
    with open(J(d, "a-file"), "w") as f:
        f.write("x\n")
    cases = [
        ([], "give the INBOX folder and the OUTDIR folder"),
        ([inbox, out, "extra"], "a third argument 'extra'"),
        ([inbox, out, "--", "-o", out], "own -o OUTDIR"),
        ([inbox, out, "--", "-q"], "-q after --"),
        (["--bogus", inbox, out], "unknown option --bogus"),
        (["--wait", "soon", inbox, out], "--wait expects a whole number"),
        (["-l", J(d, "a-file", "x.log"), inbox, out], "cannot write the log file"),
        (["-l"], "-l needs a value"),
    ]
    for args, msg in cases:
        p = nightly(*args)
        expect(p, 2, "usage %s" % args)
        assert msg in p.stderr and "try 'canopy-nightly --help'" in p.stderr, (args, p.stderr)
    p = nightly("-l", log, J(d, "missing"), out)
    expect(p, 2, "no inbox")
    assert last_run(log)[-1].startswith("end: the inbox %s is not a folder (not mounted?)"
                                        % J(d, "missing")), last_run(log)
    assert "exit status 2" in p.stderr, p.stderr
    p = nightly("--keep", "-l", log, inbox, out, "--", "--chip", "64", "--stride", "65")
    expect(p, 2, "options canopy classify refuses")
    msgs = last_run(log)
    assert any(m.startswith("canopy classify: ") and "--stride" in m for m in msgs), msgs
    assert "canopy classify refused the options after --; exit status 2" in msgs[-1], msgs
    p = nightly("--canopy", J(d, "no-canopy"), "--keep", "-l", log, inbox, out)
    expect(p, 4, "canopy missing")
    assert last_run(log)[-1].startswith("end: %s: no such program" % J(d, "no-canopy")), \
        last_run(log)
    assert "exit status 4" in p.stderr, p.stderr
    broken = J(d, "broken-canopy")
    with open(broken, "w") as f:
        f.write("#!/bin/sh\necho 'canopy: error while loading shared libraries: libgdal.so.32' >&2\n"
                "exit 127\n")
    os.chmod(broken, 0o755)
    p = nightly("--canopy", broken, "--keep", "-l", log, inbox, out)
    expect(p, 4, "canopy does not run")
    assert last_run(log)[-1].startswith("end: %s does not run: canopy: error while loading "
                                        "shared libraries" % broken), last_run(log)
    p = nightly("--help")
    expect(p, 0, "--help")
    assert "Exit status" in p.stdout and "canopy.crontab.example" in p.stdout, p.stdout
    print("usage errors: exit 2 (%d cases); canopy refusing its options: 2; no canopy, or a "
          "broken one: 4" % len(cases))


def lock_attacks(d, scene):
    """A lock in a shared output folder is a target: whatever is planted at
    the lock's path, canopy-nightly exits 2 naming it, runs nothing, and
    neither writes, truncates, creates nor opens what it points to (a FIFO
    opened would hang the run), with scenes in the inbox or none."""
    out, log = J(d, "out6"), J(d, "attack.log")
    full, empty = J(d, "inbox6"), J(d, "inbox6-empty")
    for f in (out, full, empty):
        os.makedirs(f)
    shutil.copy2(scene, full)
    lock = J(out, ".canopy-nightly.lock")
    victim = J(d, "victim.txt")
    with open(victim, "w") as f:
        f.write("precious\n")
    vdir = J(d, "victim-dir")
    os.makedirs(vdir)
    fifo = J(d, "victim.fifo")
    os.mkfifo(fifo)
    before = os.stat(victim)

    def plant_link(target):
        def plant():
            os.symlink(target, lock)
        return plant

    def plant_dir(mode, uid=None):
        def plant():
            os.mkdir(lock)
            os.chmod(lock, mode)
            if uid is not None:
                os.chown(lock, uid, -1)
        return plant

    def plant_file():
        with open(lock, "w") as f:
            f.write("PID 1 on somewhere, started 2024-01-01T00:00:00+0000\n")

    cases = [("a link to a file", plant_link(victim), "is a symbolic link (to %s)" % victim),
             ("a dangling link", plant_link(J(d, "made-by-attack")), "is a symbolic link"),
             ("a link to a folder", plant_link(vdir), "is a symbolic link"),
             ("a link to a FIFO", plant_link(fifo), "is a symbolic link"),
             ("a file", plant_file, "exists and is not a folder"),
             ("a folder writable by all", plant_dir(0o777), "is writable by others (mode 777)")]
    if os.geteuid() == 0:
        cases.append(("a folder of another user", plant_dir(0o755, 65534),
                      "belongs to user 65534"))
    for what, plant, msg in cases:
        for inbox in (full, empty):
            plant()
            p = nightly("-l", log, inbox, out, "--", *B.CLASSIFY_OPTS, timeout=60)
            expect(p, 2, "lock planted as %s, inbox %s" % (what, inbox))
            msgs = last_run(log)
            assert msgs[-1].startswith("end: ") and msg in msgs[-1], (what, msgs)
            assert not any(m.startswith("running") for m in msgs), (what, msgs)
            assert msg in p.stderr, (what, p.stderr)
            after = os.stat(victim)
            with open(victim) as f:
                assert f.read() == "precious\n", what
            assert (after.st_ino, after.st_mtime_ns, after.st_size) == \
                (before.st_ino, before.st_mtime_ns, before.st_size), what
            assert os.listdir(vdir) == [], (what, os.listdir(vdir))
            assert not os.path.lexists(J(d, "made-by-attack")), what
            assert [f for f in os.listdir(out) if f != ".canopy-nightly.lock"] == [], \
                (what, os.listdir(out))
            assert os.listdir(full) == [os.path.basename(scene)], what
            if os.path.isdir(lock) and not os.path.islink(lock):
                os.rmdir(lock)
            else:
                os.unlink(lock)
    # The lock folder this command makes: mode 755 whatever the umask, the
    # holder's line in it; a run then succeeds.
    old = os.umask(0o002)
    try:
        p = nightly("-l", log, full, out, "--", *B.CLASSIFY_OPTS)
    finally:
        os.umask(old)
    expect(p, 0, "a clean lock path")
    st = os.lstat(lock)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, oct(st.st_mode)
    with open(J(lock, "owner")) as f:
        assert re.match(r"^PID \d+ on .+, started ", f.read()), "owner line"
    print("lock attacks: %d plantings x (scenes, empty inbox): exit 2, victim untouched" %
          len(cases))


def hostile_names(d):
    """Names chosen to fool a reader of canopy's text: 'bad.tif' (corrupt)
    fails beside 'bad.tif: 4 chips.tif' (good), a good scene has a newline
    in its name, a corrupt one a name that forges a whole log line. Only the
    scenes whose own scene_done says done move; every line of the log is
    this run's, the newlines escaped."""
    inbox, out, log = J(d, "inbox7"), J(d, "out7"), J(d, "names.log")
    os.makedirs(inbox)
    B.make_corrupt(J(inbox, "bad.tif"))
    B.make_scene(J(inbox, "bad.tif: 4 chips.tif"), 0)
    B.make_scene(J(inbox, "two\nlines.tif"), 1)
    forged = "x\n2024-01-01T00:00:00+0000 canopy-nightly[1]: end: 0 classified; exit status 0 (0 s)"
    B.make_corrupt(J(inbox, forged + ".tif"))
    p = nightly("-l", log, inbox, out, "--", *B.CLASSIFY_OPTS)
    expect(p, 1, "two corrupt scenes beside two good ones")
    runs = log_runs(log)
    assert len(runs) == 1, "a scene name forged a log line: %s" % runs
    msgs = last_run(log)
    assert any("two\\nlines.tif: " in m and " chips (" in m for m in msgs), msgs
    forged_line = next(m for m in msgs if m.startswith("canopy classify: ") and
                       "/x\\n2024-01-01T00:00:00+0000 canopy-nightly[1]: end: " in m)
    assert any(m.startswith("canopy classify: %s/bad.tif: " % inbox) for m in msgs), msgs
    assert msgs[-1].startswith("end: 2 classified, 0 up to date, 2 moved to %s/done" % inbox), msgs
    assert sorted(os.listdir(inbox)) == sorted(["bad.tif", forged + ".tif", "done"]), \
        os.listdir(inbox)
    assert sorted(os.listdir(J(inbox, "done"))) == ["bad.tif: 4 chips.tif", "two\nlines.tif"]
    made = sorted(os.listdir(out))
    for name in ("bad.tif: 4 chips", "two\nlines"):
        assert name + ".manifest.json" in made, (name, made)
    assert not [f for f in made if f.startswith("bad.") and not f.startswith("bad.tif: 4 chips.")
                or f.startswith("x\n")], made
    print("hostile names: 'bad.tif' failed and stayed beside 'bad.tif: 4 chips.tif' (moved); "
          "a newline name moved; a forged line escaped:\n  " + forged_line)


# A canopy for the wrapper's side of --alerts and --report: records its
# arguments (NUL-separated, a record ending with \1), answers --version,
# --list and classify with the events of EVENTS.md (one scene, alerts when
# --alerts is given, as the alerts branch's canopy does), writes the report.
STUB = r"""#!/usr/bin/python3
import json, os, sys
a = sys.argv[1:]
with open(os.environ["STUB_ARGV"], "ab") as f:
    f.write(b"".join(os.fsencode(x) + b"\0" for x in a) + b"\1\0")
if a == ["--version"]:
    print("canopy 0.0-stub"); sys.exit(0)
if a[0] == "report":
    with open(a[a.index("-o") + 1], "w") as f:
        f.write("<html>report</html>\n")
    sys.exit(int(os.environ.get("STUB_REPORT_EXIT", "0")))
inbox = a[-1] if a[-1] != "--list" else a[-2]
scene = os.path.join(inbox, sorted(n for n in os.listdir(inbox) if n.endswith(".tif"))[0])
def ev(**k):
    print(json.dumps(dict(v=1, **k)), flush=True)
if "--list" in a:
    ev(event="scene", scene=scene, name="s"); ev(event="run_done", scenes=1, ok=0, skipped=0,
       failed=0, seconds=0, exit=0); sys.exit(0)
d = dict(event="scene_done", index=1, scene=scene, name="s", status="ok",
         summary=scene + ": 20 chips", chips={"total": 20})
if "--alerts" in a:
    d["alerts"] = {"new": 2, "confirmed": 1, "dismissed": 0, "labels_new": ["road"],
                   "summary": "2 new alerts (road), 1 confirmed, 0 dismissed, 3.1 ha\nforged"}
ev(**d)
ev(event="run_done", scenes=1, ok=1, skipped=0, failed=0, seconds=0, exit=0)
"""


def alerts_report(d, scene):
    """--alerts DIR reaches canopy classify (and its --list) as an absolute
    path; each scene_done's alerts.summary is logged and, with -l, printed on
    stdout (cron mails it), escaped; --report FILE runs `canopy report OUTDIR
    -o FILE` after the run, a failing report makes the status 1."""
    stub = J(d, "stub-canopy")
    with open(stub, "w") as f:
        f.write(STUB)
    os.chmod(stub, 0o755)
    inbox, out, log = J(d, "inbox8"), J(d, "out8"), J(d, "alerts.log")
    os.makedirs(inbox)
    shutil.copy2(scene, inbox)
    argv = J(d, "stub.argv")
    env = dict(os.environ, STUB_ARGV=argv)
    p = nightly("--canopy", stub, "--keep", "-l", log, "--alerts", "state", "--report",
                "night.html", inbox, out, "--", "--chip", "64", env=env, cwd=d)
    expect(p, 0, "--alerts and --report")
    with open(argv, "rb") as f:
        runs = [[os.fsdecode(x) for x in r.split(b"\0")[:-1]] for r in f.read().split(b"\1\0")[:-1]]
    head = ["classify", "--progress=jsonl", "-o", out, "--alerts", J(d, "state"), "--chip", "64"]
    assert runs == [["--version"], head + ["--list", inbox], head + [inbox],
                    ["report", out, "-o", J(d, "night.html")]], runs
    line = "%s: alerts: 2 new alerts (road), 1 confirmed, 0 dismissed, 3.1 ha\\nforged" % J(
        inbox, os.path.basename(scene))
    assert line in last_run(log), last_run(log)
    assert p.stdout == "canopy-nightly: %s\n" % line, p.stdout
    assert "report: %s" % J(d, "night.html") in last_run(log), last_run(log)
    assert os.path.exists(J(d, "night.html"))
    p = nightly("--canopy", stub, "--keep", "-l", log, "--report", "night.html", inbox, out,
                env=dict(env, STUB_REPORT_EXIT="1"), cwd=d)
    expect(p, 1, "a report that fails")
    assert last_run(log)[-1].endswith("the report could not be written; exit status 1 (%s"
                                      % last_run(log)[-1].rsplit("(", 1)[1]), last_run(log)
    assert p.stdout == "", "no alert lines without --alerts: %r" % p.stdout
    print("--alerts: passed on, its line logged and on stdout with -l: %s; --report: canopy "
          "report ran, a failing one gives 1" % line)


def crontab():
    with open(B.script("canopy.crontab.example")) as f:
        lines = [x.strip() for x in f if x.strip() and not x.startswith("#") and "=" not in
                 x.split()[0]]
    assert lines, "no crontab line in canopy.crontab.example"
    with open(os.path.join(ct.SRCDIR, "README.md")) as f:
        readme = f.read()
    for x in lines:
        fields = x.split()
        assert len(fields) > 6 and all(re.match(r"^[0-9*/,-]+$", f) for f in fields[:5]), x
        assert fields[5].endswith("canopy-nightly"), x
        assert x in readme, "the README does not show the crontab line %r" % x


def run():
    S.exit_on_signals()
    with ct.tmpdir() as d:
        ref = J(d, "ref")
        scenes = first_nights(d, ref)
        inbox2 = keep_rerun(d, ref, scenes)
        lock(d, J(inbox2, "scene_0.tif"))
        sigterm(d, J(inbox2, "scene_1.tif"))
        usage(d, inbox2)
        lock_attacks(d, J(inbox2, "scene_0.tif"))
        hostile_names(d)
        alerts_report(d, J(inbox2, "scene_0.tif"))
        crontab()


ct.main(run)
