"""Runs `canopy classify` as a child process for a Processing algorithm:
finds the executable, reports its progress and messages to the feedback as
they come, and stops it when the user cancels.

Stopping is SIGTERM (Popen.terminate), never SIGKILL first: canopy then
finishes the strip of chips in hand, removes the scene's temporary files and
exits, so a cancelled scene leaves no output (the scenes of a batch finished
before stay, complete)."""
import codecs
import os
import queue
import shlex
import shutil
import subprocess
import threading
import time

from qgis.core import QgsProcessingException

from .output import ClassifyOutput

SETTING = "CANOPY_EXECUTABLE"
STOP_SECONDS = 60   # after SIGTERM, before SIGKILL: a strip of a large model with TTA


def find_canopy(setting=""):
    """The canopy executable: the provider's setting, else $CANOPY, else canopy
    on PATH. A setting or variable that names no executable is an error, not
    a reason to run another canopy."""
    for source, value in (("the canopy executable setting (Settings > Options > Processing "
                           "> Providers > canopy)", setting),
                          ("the CANOPY environment variable", os.environ.get("CANOPY", ""))):
        if value:
            found = shutil.which(value)
            if not found:
                raise QgsProcessingException(
                    "%s names %s, which is not an executable file; correct it or clear it to "
                    "use canopy from PATH" % (source, value))
            return found
    found = shutil.which("canopy")
    if not found:
        raise QgsProcessingException(
            "canopy was not found: it is not on PATH, and neither the canopy executable setting "
            "(Settings > Options > Processing > Providers > canopy) nor the CANOPY environment "
            "variable names it. Install canopy (make install) or set its path there.")
    return found


class Run:
    """What a finished run left: exit status, whether it was cancelled, the
    scenes canopy finished (output.Scene), batch counts, and stderr."""

    def __init__(self, returncode, canceled, output, stderr_lines):
        self.returncode = returncode
        self.canceled = canceled
        self.scenes = output.finished
        self.counts = output.counts
        self.stderr = stderr_lines

    def message(self):
        """canopy's own messages ("canopy classify: ..."), else all of stderr,
        else the exit status."""
        own = [x for x in self.stderr if x.startswith("canopy ")]
        if own or self.stderr:
            return "\n".join(own or self.stderr)
        if self.returncode < 0:
            return "canopy was stopped by signal %d" % -self.returncode
        return "canopy exited with status %d" % self.returncode


def _pump(stream, name, q):
    """Reader thread: raw chunks of one pipe into the queue, then EOF (None)."""
    fd = stream.fileno()
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        q.put((name, data))
    q.put((name, None))


def run_classify(exe, args, feedback):
    """Runs `exe classify --progress ARGS` to its end or until the feedback is
    cancelled; returns a Run."""
    cmd = [exe, "classify", "--progress"] + list(args)
    feedback.pushCommandInfo(" ".join(shlex.quote(a) for a in cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as e:
        raise QgsProcessingException("cannot run %s: %s" % (exe, e.strerror))
    q = queue.Queue()
    for stream, name in ((proc.stdout, "out"), (proc.stderr, "err")):
        threading.Thread(target=_pump, args=(stream, name, q), daemon=True).start()
    decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in ("out", "err")}
    out, err_partial, err_lines = ClassifyOutput(), "", []
    open_pipes, canceled, kill_at = 2, False, None
    while open_pipes:
        if not canceled and feedback.isCanceled():
            canceled = True
            proc.terminate()
            kill_at = time.monotonic() + STOP_SECONDS
            feedback.pushInfo("Cancelled: canopy is stopping; the scene in progress leaves "
                              "no output")
        if kill_at is not None and time.monotonic() > kill_at and proc.poll() is None:
            proc.kill()
            kill_at = None
            feedback.reportError("canopy did not stop within %d s and was killed; hidden "
                                 "temporary files (.NAME.*.tmp-%d) may remain in the output "
                                 "folder" % (STOP_SECONDS, proc.pid))
        try:
            name, data = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if data is None:
            open_pipes -= 1
        text = decoders[name].decode(data or b"", final=data is None)
        if name == "out":
            for line in out.feed(text + ("\n" if data is None else "")):
                feedback.pushInfo(line)
            if not canceled:
                feedback.setProgress(out.percent())
        else:
            err_partial += text + ("\n" if data is None else "")
            *lines, err_partial = err_partial.split("\n")
            for line in filter(None, (x.rstrip("\r") for x in lines)):
                err_lines.append(line)
                feedback.reportError(line, False)
    returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    return Run(returncode, canceled, out, err_lines)
