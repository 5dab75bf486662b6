"""scripts/canopy-slurm and canopy-slurm.sbatch on a one-node Slurm cluster
(munged, slurmctld, slurmd) brought up on 127.0.0.1 by the test:
- four scenes, one corrupt, one per array task, -c 1, --wait: exit 1; the
  report names the corrupt scene, its task, exit 1 and log (which holds
  canopy's error); Slurm has the corrupt task FAILED with ExitCode 1:0, the
  others COMPLETED 0:0; the good scenes' outputs are those of a direct canopy
  classify (GDAL/OGR) and their manifests say 1 thread (canopy alone would
  take OMP_NUM_THREADS=2); --report and --report --failed say the same later;
- the corrupt scene replaced by a good one, the list submitted again held
  (--sbatch --hold) with -J, -p, -t, --mem and --max-running (as Slurm
  shows them): --report exits 3 (pending); released: every task exits
  0, the good scenes' tasks found them up to date and rewrote nothing, the
  fixed scene's outputs are a direct classify's;
- attacks: an OUTDIR with Slurm's '%x' and GNU Parallel's '{}' is written to
  literally; a results folder writable by others or of another user is
  refused;
- usage errors exit 2.
Needs root (slurmd starts the jobs as their user): skipped otherwise.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import batchlib as B  # noqa: E402
import canopytest as ct  # noqa: E402
import services as S  # noqa: E402

J = os.path.join


def slurm(env, *args):
    return B.run_script("canopy-slurm", *args, env=env)


def job_of(p):
    m = re.search(r"submitted job (\d+): ", p.stdout)
    assert m, (p.returncode, p.stdout, p.stderr)
    return m.group(1)


def task_states(env, job):
    """{task: (state, exit code)} from slurmctld (scontrol show job)."""
    p = ct.run(["scontrol", "-o", "show", "job", job], env=env)
    out = {}
    for line in p.stdout.splitlines():
        f = dict(x.split("=", 1) for x in line.split() if "=" in x)
        out[int(f["ArrayTaskId"])] = (f["JobState"], f["ExitCode"])
    return out


def attacks(d, env, scene):
    """Slurm expands %-patterns in --output: an OUTDIR with '%x' and '{}' gets
    its task logs and results at its literal name; a results folder of
    another user or writable by others is refused before anything is
    submitted."""
    out = J(d, "out%x_{}")
    p = slurm(env, "-o", out, "-c", "1", "--wait", scene, "--", *B.CHIP_OPTS)
    job = job_of(p)
    assert p.returncode == 0 and "1 scenes: 1 done" in p.stdout, (p.stdout, p.stderr)
    made = sorted(os.listdir(J(out, "slurm")))
    assert "canopy-%s_1.out" % job in made and "canopy-%s_1.events" % job in made, made
    assert not [f for f in os.listdir(d) if f.startswith("out") and f not in ("out", "out%x_{}")], \
        os.listdir(d)
    shared = J(d, "shared-results")
    os.makedirs(shared)
    os.chmod(shared, 0o777)
    p = slurm(env, "-o", J(d, "out-x"), "--results", shared, scene)
    assert p.returncode == 2 and "is writable by others (mode 777)" in p.stderr, (p.returncode, p.stderr)
    os.chmod(shared, 0o755)
    os.chown(shared, 65534, -1)
    p = slurm(env, "-o", J(d, "out-x"), "--results", shared, scene)
    assert p.returncode == 2 and "belongs to user 65534" in p.stderr, (p.returncode, p.stderr)
    assert os.listdir(shared) == [], os.listdir(shared)
    print("attacks: -o 'out%%x_{}' written literally (%s); a results folder writable by others "
          "or of another user refused" % ", ".join(made))


def run():
    if os.geteuid() != 0:
        print("SKIP: slurmd runs jobs as their user: the one-node cluster needs root")
        sys.exit(ct.SKIP)
    S.exit_on_signals()
    with ct.tmpdir() as d, S.Services() as svc:
        cluster = S.Slurm(svc, J(d, "slurm"))
        try:
            cluster.start()
            # canopy's own default would be OMP_NUM_THREADS (sbatch passes the
            # environment on): the manifests' 1 thread comes from -c 1.
            check(d, dict(cluster.env, OMP_NUM_THREADS="2"))
        finally:
            cluster.stop()


def check(d, env):
    scenes = B.make_scenes(J(d, "scenes"), 3)
    bad = B.make_corrupt(J(d, "scenes", "corrupt.tif"))
    order = [scenes[0], bad, scenes[1], scenes[2]]
    lst = B.write_list(J(d, "scenes.txt"), order)
    ref = J(d, "ref")
    B.direct(scenes, ref)
    out = J(d, "out")
    results = J(out, "slurm")

    p = slurm(env, "-o", out, "-c", "1", "--wait", "@" + lst, "--", *B.CHIP_OPTS)
    job = job_of(p)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    report = "canopy-slurm: job %s: 4 scenes: 3 done, 1 failed, 0 pending or running, " \
             "0 without result\nfailed: %s (task 2, exit 1; log %s/canopy-%s_2.out)\n" % (
                 job, bad, results, job)
    assert p.stdout.endswith(report), p.stdout
    with open(J(results, "canopy-%s_2.out" % job)) as f:
        log2 = f.read()
    assert "canopy classify: %s: " % bad in log2 and "task 2: exit 1" in log2, log2
    with open(J(results, "canopy-%s_1.out" % job)) as f:
        log1 = f.read()
    assert "1 thread(s): %s" % scenes[0] in log1 and "%s: 20 chips" % scenes[0] in log1, log1
    states = task_states(env, job)
    assert states == {1: ("COMPLETED", "0:0"), 2: ("FAILED", "1:0"), 3: ("COMPLETED", "0:0"),
                      4: ("COMPLETED", "0:0")}, states
    for s in scenes:
        B.assert_same_outputs(out, ref, B.name_of(s))
        with open(J(out, B.name_of(s) + ".manifest.json")) as f:
            threads = json.load(f)["threads"]
        assert threads == 1, "%s: %d threads with --cpus-per-task 1" % (s, threads)
    B.no_outputs(out, "corrupt")
    print("array: exit 1; Slurm: %s\n%s" % (states, report.strip()))

    p = slurm(env, "--report", job, "-o", out)
    assert p.returncode == 1 and p.stdout == report, (p.returncode, p.stdout, p.stderr)
    p = slurm(env, "--report", job, "--failed", "--results", results)
    assert p.returncode == 1 and p.stdout == bad + "\n", (p.returncode, p.stdout, p.stderr)
    print("--report: exit 1; --report --failed: %s" % p.stdout.strip())

    state = B.files_state(out)
    os.unlink(bad)
    B.make_scene(bad, 3)
    B.direct([bad], ref)
    p = slurm(env, "-o", out, "--sbatch", "--hold", "-J", "canopy-rerun", "-p", "batch", "-t",
              "5:00", "--mem", "200M", "--max-running", "1", "@" + lst, "--", *B.CHIP_OPTS)
    assert p.returncode == 0 and "--report" in p.stdout, (p.returncode, p.stdout, p.stderr)
    job2 = job_of(p)
    held = ct.run(["scontrol", "-o", "show", "job", job2], env=env).stdout
    for field in ("JobName=canopy-rerun", "Partition=batch", "TimeLimit=00:05:00",
                  "ArrayTaskThrottle=1", "ArrayTaskId=1-4", "mem=200M"):
        assert field in held, (field, held)
    p = slurm(env, "--report", job2, "-o", out)
    assert p.returncode == 3 and "4 scenes: 0 done, 0 failed, 4 pending or running" in p.stdout, \
        (p.returncode, p.stdout, p.stderr)
    ct.run(["scontrol", "release", job2], env=env)

    def ended():
        return slurm(env, "--report", job2, "-o", out).returncode != 3
    S.wait_until("job %s" % job2, ended, 60)
    p = slurm(env, "--report", job2, "-o", out)
    assert p.returncode == 0 and "4 scenes: 4 done, 0 failed" in p.stdout, (p.stdout, p.stderr)
    states = task_states(env, job2)
    assert all(v == ("COMPLETED", "0:0") for v in states.values()) and len(states) == 4, states
    for i in (1, 3, 4):
        with open(J(results, "canopy-%s_%d.out" % (job2, i))) as f:
            assert ": up to date (" in f.read(), i
    after = B.files_state(out)
    assert {k: v for k, v in after.items() if not k.startswith("corrupt.")} == state, \
        "the rerun rewrote outputs of scenes that were up to date"
    B.assert_same_outputs(out, ref, "corrupt")
    print("rerun (held, then released): --report 3 while pending, then 0; 3 up to date, "
          "nothing rewritten, the fixed scene done")

    attacks(d, env, scenes[0])

    for args, msg in ((["-o", out, "@" + lst, "--", "--threads", "2"], "-c N (--cpus-per-task)"),
                      (["-o", out, "@" + lst, "--", "--alerts", out], "own --alerts DIR"),
                      (["--report", "999999", "-o", out], "no record of job 999999"),
                      (["-o", out, "-c", "x", "@" + lst], "-c expects a whole number"),
                      (["@" + lst], "give the output folder"),
                      (["-o", out, J(d, "empty-dir")], "no scene to classify")):
        os.makedirs(J(d, "empty-dir"), exist_ok=True)
        p = slurm(env, *args)
        assert p.returncode == 2 and msg in p.stderr, (args, p.returncode, p.stderr)
    p = slurm(env, "--help")
    assert p.returncode == 0 and "cpus-per-task" in p.stdout, p.stdout
    print("usage errors: exit 2")


ct.main(run)
