"""Reads what `canopy classify --progress` prints on stdout, as it arrives:

    [2/5] /data/a.tif: 0...10...20...30...40...50...60...70...80...90...100 - done.
    /data/a.tif: 412 chips (...) ...; positive chips: road 12 -> /out/a.*
    /data/b.tif: up to date (/out/b.manifest.json)
    canopy classify: 4 scenes classified, 0 up to date, 1 failed

GDAL's progress: "0", then one character or number per 2.5 % ("." between
the tens), " - done." at the end; "[i/n] " before the path in a batch of n
scenes. Plain Python, no QGIS: the tests feed it text directly."""
import re

_TICKS = re.compile(r"(?:^|: )(0[0-9.]*)( - done\.)?$")
_BATCH = re.compile(r"^\[(\d+)/(\d+)\] ")
_CLASSIFIED = re.compile(r"^(.+): \d+ chips \(.* -> (.+)\.\*$")
_UP_TO_DATE = re.compile(r"^(.+): up to date \((.+)\.manifest\.json\)$")
_SUMMARY = re.compile(r"^canopy classify: (\d+) scenes? classified, (\d+) up to date, "
                      r"(\d+) failed$")


class Scene:
    """A scene canopy finished: its path, the path of its outputs without the
    suffixes (OUTDIR/NAME) and whether it was classified or up to date."""

    def __init__(self, path, base, status):
        self.path, self.base, self.status = path, base, status

    def output(self, suffix):
        return self.base + suffix


class ClassifyOutput:
    def __init__(self):
        self.partial = ""
        self.scene, self.scenes = 1, 1   # the scene in progress, of how many
        self.fraction = 0.0              # of the scene in progress
        self.finished = []               # [Scene]
        self.counts = None               # (classified, up to date, failed) of a batch

    def percent(self):
        """Overall progress, 0..100."""
        return 100.0 * (self.scene - 1 + self.fraction) / self.scenes

    def feed(self, text):
        """Takes the next piece of stdout; returns its complete lines that are
        not progress ticks (the log)."""
        log = []
        self.partial += text
        lines = re.split(r"\r\n|\n|\r", self.partial)
        self.partial = lines.pop()
        for line in lines:
            if not self._progress(line) and line:
                log.append(line)
                self._result(line)
        self._progress(self.partial)
        return log

    def _progress(self, line):
        """Updates the progress from a (partial) tick line; False if it is not one."""
        batch = _BATCH.match(line)
        if batch:
            scene, scenes = int(batch.group(1)), int(batch.group(2))
            if (scene, scenes) != (self.scene, self.scenes):
                self.scene, self.scenes, self.fraction = scene, scenes, 0.0
        ticks = _TICKS.search(line)
        if not ticks:
            return False
        if ticks.group(2):
            steps = 40
        else:   # "0" then one step per "." or number
            steps = len(re.findall(r"\d+|\.", ticks.group(1))) - 1
        self.fraction = max(self.fraction, min(steps, 40) / 40.0)
        return True

    def _result(self, line):
        m = _CLASSIFIED.match(line)
        if m:
            self.finished.append(Scene(m.group(1), m.group(2), "classified"))
            return
        m = _UP_TO_DATE.match(line)
        if m:
            self.finished.append(Scene(m.group(1), m.group(2), "up to date"))
            return
        m = _SUMMARY.match(line)
        if m:
            self.counts = tuple(int(g) for g in m.groups())
