"""scripts/canopy-parallel, GNU Parallel over ssh, with sshd brought up on
127.0.0.1 (a free port, temporary host and user keys) as two hosts:
- four scenes, one corrupt, from an @list of relative paths: exit 1; the
  summary and stderr name the corrupt scene, its exit status and host; the
  job log has a line per scene, run on both hosts, and sshd logged the
  logins; the three good scenes' outputs are those of a direct canopy
  classify (GDAL/OGR), the corrupt one has none;
- --resume: nothing runs again (job log and outputs unchanged), still exit 1;
- the corrupt scene replaced by a good one, --resume-failed: only it runs
  (one more job log line), exit 0, its outputs as a direct classify's, the
  others untouched;
- a rerun from --sshloginfile without a job log: every scene up to date,
  nothing rewritten, exit 0;
- attacks: {= perl =} in -o, -m and options after -- runs nowhere, -o
  'out_{}' is written to literally, a value with quotes, $(...) and a newline
  reaches canopy unchanged over ssh;
- --alerts DIR reaches canopy (a stub canopy speaking the event stream) and
  each scene's alert line is printed;
- usage errors exit 2.
"""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import batchlib as B  # noqa: E402
import canopytest as ct  # noqa: E402
import services as S  # noqa: E402

J = os.path.join
HOSTS = ("canopy-a", "canopy-b")


def joblog(path):
    """[(seq, host, exitval, signal, command)] of GNU Parallel's job log."""
    with open(path) as f:
        rows = [x.rstrip("\n").split("\t") for x in f][1:]
    return [(int(r[0]), r[1], int(r[6]), int(r[7]), r[8]) for r in rows]


def parallel(*args, **kw):
    return B.run_script("canopy-parallel", *args, **kw)


def attacks(d, ssh, scene, ref):
    """GNU Parallel expands {}, {= perl =} and the like in its command: none
    of the user's strings may reach it. Perl code in an option after --, in
    -m and in -o runs nowhere; -o 'out_{}' is written to literally; a value
    with quotes, $(...) and a newline reaches canopy as one word, over ssh."""
    # Relative names: code would run in d (GNU Parallel's side, the current
    # folder) or in the home folder (the ssh side); both are checked.
    victims = ["VICTIM-%s" % w for w in ("opt", "model", "out", "shell")]
    model = J(d, 'models {} {=system("touch %s")=}' % victims[1], "demo.onnx")
    os.makedirs(os.path.dirname(model))
    shutil.copy(B.MODEL, model)
    out = J(d, 'out_{} {=system("touch %s")=}' % victims[2])
    odd = "$(touch %s) 'q' \"x\"\n{}" % victims[3]
    # canopy as run on the host: its arguments, NUL-separated, then the real one.
    argv_log = J(d, "argv.log")
    recorder = J(d, "recording-canopy")
    with open(recorder, "w") as f:
        f.write("#!/bin/sh\n{ printf '%%s\\0' \"$@\"; printf '\\1\\0'; } >>'%s'\n"
                "exec '%s' \"$@\"\n" % (argv_log, ct.CANOPY))
    os.chmod(recorder, 0o755)
    opts = list(B.CLASSIFY_OPTS) + ["--config", "CPL_DEBUG", '{=system("touch %s")=}' % victims[0],
                                    "--config", "CANOPY_TEST_ODD", odd]
    p = parallel("-S", HOSTS[0], *ssh, "--canopy", recorder, "-o", out, "-m", model, scene, "--",
                 *opts, cwd=d)
    assert p.returncode == 0 and "1 scenes: 1 done, 0 failed" in p.stdout, (p.stdout, p.stderr)
    left = [J(w, v) for v in victims for w in (d, os.path.expanduser("~"))
            if os.path.lexists(J(w, v))]
    assert not left, "code in a user's string ran: %s" % left
    with open(argv_log) as f:
        runs = [r.split("\0")[:-1] for r in f.read().split("\1\0")[:-1]]
    head = ["classify", "--progress=jsonl", "-o", out, "-m", model]
    assert runs == [head + opts + [scene, "--list"], head + opts + [scene]], runs
    B.assert_same_outputs(out, ref, B.name_of(scene))
    with open(J(out, B.name_of(scene) + ".manifest.json")) as f:
        assert json.load(f)["model"]["path"] == model, "the model is not %s" % model
    others = [f for f in os.listdir(d) if f.startswith("out_") and f != os.path.basename(out)]
    assert not others, "outputs elsewhere: %s" % others
    p = parallel("-o", J(d, "out_{}"), scene, "--", *B.CLASSIFY_OPTS, cwd=d)
    assert p.returncode == 0, (p.stdout, p.stderr)
    B.assert_same_outputs(J(d, "out_{}"), ref, B.name_of(scene))
    print("attacks: {= perl =} in -o, -m and after --: nothing ran; -o 'out_{}' written "
          "literally (over ssh and here)")


# A canopy that speaks the event stream of EVENTS.md for one scene (the last
# argument), with the alerts of `--alerts DIR` as the alerts branch's canopy
# writes them, and records its arguments (NUL-separated, a record ending
# with \1).
STUB = r"""#!/usr/bin/python3
import json, os, sys
a = sys.argv[1:]
with open(os.environ["STUB_ARGV"], "ab") as f:
    f.write(b"".join(os.fsencode(x) + b"\0" for x in a) + b"\1\0")
def ev(**k):
    print(json.dumps(dict(v=1, **k)), flush=True)
if a[-1] == "--list":
    ev(event="scene", scene=a[-2], name="s")
else:
    ev(event="scene_done", index=1, scene=a[-1], name="s", status="ok", summary=a[-1] + ": 1 chips",
       alerts={"new": 1, "confirmed": 0, "dismissed": 0, "summary": "1 new alert (road), 0.4 ha"})
ev(event="run_done", scenes=1, ok=1, skipped=0, failed=0, seconds=0, exit=0)
"""


def alerts(d, scene):
    """--alerts DIR reaches canopy classify (absolute), each scene's alert
    line is printed."""
    stub = J(d, "stub-canopy")
    with open(stub, "w") as f:
        f.write(STUB)
    os.chmod(stub, 0o755)
    argv = J(d, "stub.argv")
    p = parallel("--canopy", stub, "-o", "out-stub", "--alerts", "state", scene, "--", "--chip",
                 "64", cwd=d, env=dict(os.environ, STUB_ARGV=argv))
    assert p.returncode == 0, (p.stdout, p.stderr)
    with open(argv) as f:
        runs = [r.split("\0")[:-1] for r in f.read().split("\1\0")[:-1]]
    head = ["classify", "--progress=jsonl", "-o", J(d, "out-stub"), "--alerts", J(d, "state")]
    assert [r[:6] for r in runs] == [head, head] and runs[1][-1] == scene, runs
    assert "canopy-parallel: %s: alerts: 1 new alert (road), 0.4 ha\n" % scene in p.stdout, p.stdout
    print("--alerts: passed on; %s" % p.stdout.splitlines()[1])


def run():
    S.exit_on_signals()
    with ct.tmpdir() as d, S.Services() as svc:
        S.program("parallel", "parallel")
        cfg = S.start_sshd(svc, J(d, "ssh"), HOSTS)
        ssh = ["--ssh", "ssh -F %s" % cfg]
        scenes = B.make_scenes(J(d, "scenes"), 3)
        bad = B.make_corrupt(J(d, "scenes", "corrupt.tif"))
        lst = B.write_list(J(d, "scenes.txt"), scenes[:2] + [bad, scenes[2]], relative_to=d)
        ref = J(d, "ref")
        B.direct(scenes, ref)
        out, log = J(d, "out"), J(d, "jobs.log")

        p = parallel("-S", HOSTS[0], "-S", HOSTS[1], *ssh, "--joblog", log, "-o", "out",
                     "@scenes.txt", "--", *B.CLASSIFY_OPTS, cwd=d)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "canopy-parallel: 4 scenes: 3 done, 1 failed (job log: %s)" % log in p.stdout, \
            p.stdout
        assert "canopy classify: %s: " % bad in p.stderr, p.stderr
        failed = [x for x in p.stderr.splitlines() if x.startswith("canopy-parallel: failed: ")]
        assert len(failed) == 1 and failed[0].startswith("canopy-parallel: failed: %s (exit 1 on "
                                                         % bad), p.stderr
        rows = joblog(log)
        assert sorted(r[0] for r in rows) == [1, 2, 3, 4], rows
        assert {r[1] for r in rows} == set(HOSTS), "not run on both hosts: %s" % rows
        assert [r[2] for r in sorted(rows)] == [0, 0, 1, 0], rows
        assert all(r[4].endswith(s) for r, s in zip(sorted(rows), scenes[:2] + [bad, scenes[2]]))
        with open(J(d, "ssh", "sshd.log")) as f:
            logins = f.read().count("Accepted publickey for ")
        assert logins >= 1 + 4, "sshd logged %d logins for 4 jobs" % logins
        for s in scenes:
            B.assert_same_outputs(J(d, "out"), ref, B.name_of(s))
        B.no_outputs(J(d, "out"), "corrupt")
        print("over ssh: exit 1, %s; %d ssh logins; hosts %s"
              % (failed[0], logins, sorted({r[1] for r in rows})))

        state = B.files_state(J(d, "out"))
        p = parallel("-S", ",".join(HOSTS), *ssh, "--joblog", log, "--resume", "-o", J(d, "out"),
                     "@" + lst, "--", *B.CLASSIFY_OPTS, cwd=d)
        assert p.returncode == 1 and "4 scenes: 3 done, 1 failed" in p.stdout, (p.stdout, p.stderr)
        assert len(joblog(log)) == 4, "--resume ran jobs again: %s" % joblog(log)
        assert B.files_state(J(d, "out")) == state

        os.unlink(bad)
        B.make_scene(bad, 3)
        B.direct([bad], ref)
        p = parallel("-S", ",".join(HOSTS), *ssh, "--joblog", log, "--resume-failed", "-o",
                     J(d, "out"), "@" + lst, "--", *B.CLASSIFY_OPTS, cwd=d)
        assert p.returncode == 0 and "4 scenes: 4 done, 0 failed" in p.stdout, (p.stdout, p.stderr)
        rows = joblog(log)
        assert len(rows) == 5 and rows[-1][0] == 3 and rows[-1][2] == 0, rows
        after = B.files_state(J(d, "out"))
        assert {k: v for k, v in after.items() if not k.startswith("corrupt.")} == state
        B.assert_same_outputs(J(d, "out"), ref, "corrupt")
        print("--resume: nothing ran; --resume-failed: only the fixed scene ran, exit 0")

        hosts = J(d, "hosts.txt")
        with open(hosts, "w") as f:
            f.write("# the cluster\n%s\n" % HOSTS[1])
        state = B.files_state(J(d, "out"))
        p = parallel("--sshloginfile", hosts, *ssh, "-o", "out", "@scenes.txt", "--",
                     *B.CLASSIFY_OPTS, cwd=d)
        assert p.returncode == 0 and "4 scenes: 4 done, 0 failed" in p.stdout, (p.stdout, p.stderr)
        assert p.stdout.count(": up to date (") == 4, p.stdout
        assert B.files_state(J(d, "out")) == state, "an up-to-date rerun rewrote outputs"
        print("rerun from --sshloginfile: 4 up to date, nothing rewritten")

        attacks(d, ssh, scenes[0], ref)
        alerts(d, scenes[0])

        for args, msg in (
                (["-o", out, "--resume", "@" + lst], "--resume needs --joblog"),
                (["@" + lst], "give the output folder with -o OUTDIR"),
                (["-o", out], "give the scenes"),
                (["-o", out, "@" + J(d, "nolist.txt")], "cannot read the scene list"),
                (["-o", out, "-j", "0", "@" + lst], "-j expects a whole number of 1 or more"),
                (["-o", out, "@" + lst, "--", "--output", out], "own -o OUTDIR")):
            p = parallel(*args)
            assert p.returncode == 2 and msg in p.stderr, (args, p.returncode, p.stderr)
        p = parallel("--help")
        assert p.returncode == 0 and "shared filesystem" in p.stdout, p.stdout
        print("usage errors: exit 2")


ct.main(run)
