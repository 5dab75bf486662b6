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

from .events import EventReader, StreamError
from .i18n import tr

SETTING = "CANOPY_EXECUTABLE"
STOP_SECONDS = 60   # after SIGTERM, before SIGKILL: a strip of a large model with TTA


def find_canopy(setting=""):
    """The canopy executable: the provider's setting, else $CANOPY, else canopy
    on PATH. A setting or variable that names no executable is an error, not
    a reason to run another canopy."""
    for source, value in ((tr("the canopy executable setting (Settings > Options > "
                              "Processing > Providers > canopy)"), setting),
                          (tr("the CANOPY environment variable"), os.environ.get("CANOPY", ""))):
        if value:
            found = shutil.which(value)
            if not found:
                raise QgsProcessingException(tr(
                    "{0} names {1}, which is not an executable file; correct it or clear it "
                    "to use canopy from PATH").format(source, value))
            return found
    found = shutil.which("canopy")
    if not found:
        raise QgsProcessingException(tr(
            "canopy was not found: it is not on PATH, and neither the canopy executable setting "
            "(Settings > Options > Processing > Providers > canopy) nor the CANOPY environment "
            "variable names it. Install canopy (make install) or set its path there."))
    return found


class Run:
    """What a finished run left, from canopy's events: exit status, whether it
    was cancelled, the scenes canopy finished (events.Scene) and those it could
    not classify (events.Failure), the run's counts, a refused run, stderr."""

    def __init__(self, returncode, canceled, reader, stderr_lines):
        self.returncode = returncode
        self.canceled = canceled
        self.scenes = reader.finished
        self.failed = reader.failed
        self.run_error = reader.run_error
        self.counts = reader.counts()
        self.stderr = stderr_lines

    def message(self):
        """canopy's error messages from its events; without any (canopy
        crashed or was killed), its last words on stderr, else the exit
        status."""
        said = ([self.run_error.message] if self.run_error else []) + \
            [f.message for f in self.failed]
        if said:
            return "\n".join(said)
        if self.stderr:
            return "\n".join(self.stderr[-5:])
        if self.returncode < 0:
            return tr("canopy was stopped by signal {0}").format(-self.returncode)
        return tr("canopy exited with status {0}").format(self.returncode)


def report(event, reader, feedback):
    """One event to the algorithm's log and progress bar."""
    kind = event.get("event")
    if kind == "scene_start":
        feedback.pushInfo("[%s/%s] %s" % (event.get("index"), event.get("count"),
                                          event.get("scene")))
    elif kind == "warning":
        feedback.pushWarning(str(event.get("message", "")))
    elif kind == "scene_done":
        scene = reader.finished[-1]
        if scene.status == "skipped":
            feedback.pushInfo(scene.summary or tr("{0}: up to date").format(scene.path))
        else:
            feedback.pushInfo(scene.summary)
        if scene.alerts and scene.alerts.get("summary"):
            feedback.pushInfo("%s: %s" % (scene.name, scene.alerts["summary"]))
    elif kind == "scene_error":
        feedback.reportError(reader.failed[-1].message, False)
    elif kind == "run_error":
        feedback.reportError(reader.run_error.message, False)


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
    """Runs `exe classify --progress=jsonl ARGS` to its end or until the
    feedback is cancelled; returns a Run. Progress, outcomes and messages come
    from canopy's event stream; stderr (the same messages for people) is kept
    for a canopy that died without saying why."""
    cmd = [exe, "classify", "--progress=jsonl"] + list(args)
    feedback.pushCommandInfo(" ".join(shlex.quote(a) for a in cmd))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as e:
        raise QgsProcessingException(tr("cannot run {0}: {1}").format(exe, e.strerror))
    q = queue.Queue()
    for stream, name in ((proc.stdout, "out"), (proc.stderr, "err")):
        threading.Thread(target=_pump, args=(stream, name, q), daemon=True).start()
    decoders = {n: codecs.getincrementaldecoder("utf-8")("replace") for n in ("out", "err")}
    reader, err_partial, err_lines, bad_stream = EventReader(), "", [], None
    open_pipes, canceled, kill_at = 2, False, None
    while open_pipes:
        if not canceled and feedback.isCanceled():
            canceled = True
            proc.terminate()
            kill_at = time.monotonic() + STOP_SECONDS
            feedback.pushInfo(tr("Cancelled: canopy is stopping; the scene in progress "
                                 "leaves no output"))
        if kill_at is not None and time.monotonic() > kill_at and proc.poll() is None:
            proc.kill()
            kill_at = None
            feedback.reportError(tr("canopy did not stop within {0} s and was killed; hidden "
                                    "temporary files (.NAME.*.tmp-{1}) may remain in the "
                                    "output folder").format(STOP_SECONDS, proc.pid))
        try:
            name, data = q.get(timeout=0.1)
        except queue.Empty:
            continue
        if data is None:
            open_pipes -= 1
        text = decoders[name].decode(data or b"", final=data is None)
        if name == "out" and bad_stream is None:
            try:
                for event in reader.feed(text + ("\n" if data is None else "")):
                    report(event, reader, feedback)
            except StreamError as e:   # not the contract the plugin knows: stop
                bad_stream = e
                proc.terminate()
                kill_at = time.monotonic() + STOP_SECONDS
            if not canceled:
                feedback.setProgress(reader.percent())
        elif name == "err":
            err_partial += text + ("\n" if data is None else "")
            *lines, err_partial = err_partial.split("\n")
            err_lines += filter(None, (x.rstrip("\r") for x in lines))
    returncode = proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    if bad_stream is not None:
        raise QgsProcessingException(tr(
            "{0} does not speak the event stream this plugin reads ({1}); install the canopy "
            "and the plugin of the same release").format(exe, bad_stream))
    return Run(returncode, canceled, reader, err_lines)
