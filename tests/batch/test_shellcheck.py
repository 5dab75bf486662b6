"""The batch commands and the functions they share pass ShellCheck as POSIX
sh (warnings and errors; -x follows the sourced canopy-batch.sh), and a
planted mistake in a copy is caught (the check can fail)."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import batchlib as B  # noqa: E402
import canopytest as ct  # noqa: E402
import services as S  # noqa: E402

SCRIPTS = ("canopy-nightly", "canopy-parallel", "canopy-slurm", "canopy-slurm.sbatch",
           "canopy-batch.sh")


def shellcheck(folder, names):
    return ct.run([S.program("shellcheck", "shellcheck"), "-x", "-S", "warning", "-s", "sh"]
                  + list(names), check=False, cwd=folder)


def run():
    p = shellcheck(os.path.dirname(B.script("canopy-nightly")), SCRIPTS)
    assert p.returncode == 0, "shellcheck:\n%s%s" % (p.stdout, p.stderr)
    with ct.tmpdir() as d:
        for name in SCRIPTS:
            shutil.copy(B.script(name), d)
        with open(os.path.join(d, "canopy-nightly"), "a") as f:
            f.write('echo "$undefined_in_canopy_nightly"\n')
        p = shellcheck(d, ["canopy-nightly"])
        assert p.returncode != 0 and "SC2154" in p.stdout, (p.returncode, p.stdout)
    print("shellcheck: %d scripts clean; a planted undefined variable is caught" % len(SCRIPTS))


ct.main(run)
