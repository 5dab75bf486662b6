"""Reads canopy's JSONL event stream (`canopy classify --progress=jsonl`,
version 1; README "Event stream") as it arrives on stdout: one JSON object
a line. Fields the plugin does not know are ignored, as the contract asks;
an object of another version "v" is refused. Plain Python, no QGIS: the
tests feed it text directly."""
import json

VERSION = 1


class StreamError(Exception):
    """stdout held something that is not a v1 event (canopy too old or too new)."""


class Scene:
    """A scene canopy finished (scene_done): its path, name, status ("ok" or
    "skipped"), outputs by kind ("probs", "masks", "markers", "manifest",
    "alerts", ...), the alert counts of a monitoring run and canopy's summary
    line."""

    def __init__(self, event):
        self.path = str(event.get("scene", ""))
        self.name = str(event.get("name", ""))
        self.status = str(event.get("status", ""))
        self.reason = str(event.get("reason", ""))
        outputs = event.get("outputs")
        self.outputs = ({str(k): str(v) for k, v in outputs.items() if isinstance(v, str)}
                        if isinstance(outputs, dict) else {})
        alerts = event.get("alerts")
        self.alerts = alerts if isinstance(alerts, dict) else None
        self.summary = str(event.get("summary", ""))

    def output(self, kind):
        """The path of an output kind, or "" when canopy wrote none."""
        return self.outputs.get(kind, "")


class Failure:
    """A scene canopy could not classify (scene_error) or a run refused
    (run_error): status and canopy's message."""

    def __init__(self, event):
        self.path = str(event.get("scene", ""))
        self.status = str(event.get("status", ""))
        self.message = str(event.get("message", ""))


class EventReader:
    def __init__(self):
        self.partial = ""
        self.count = 1              # scenes in the run (run_start)
        self.fraction = {}          # index -> done, of the scenes in progress
        self.finished = []          # [Scene]
        self.failed = []            # [Failure] (scene_error)
        self.run_error = None       # Failure (run_error)
        self.run_done = None        # the run_done event
        self.run_start = None       # the run_start event

    def percent(self):
        """Overall progress, 0..100."""
        ended = len(self.finished) + len(self.failed)
        return min(100.0, 100.0 * (ended + sum(self.fraction.values())) / max(self.count, 1))

    def feed(self, text):
        """Takes the next piece of stdout; returns the complete events in it
        (dicts), in order. Raises StreamError on a line that is not a v1
        event."""
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as e:
                raise StreamError("not a JSON event (%s): %.200s" % (e, line))
            if not isinstance(event, dict) or event.get("v") != VERSION:
                raise StreamError("not a version %d event: %.200s" % (VERSION, line))
            self._take(event)
            events.append(event)
        return events

    def _take(self, event):
        kind = event.get("event")
        index = event.get("index")
        if kind == "run_start":
            self.run_start = event
            if isinstance(event.get("scenes"), int):
                self.count = max(event["scenes"], 1)
        elif kind == "scene_start":
            if isinstance(event.get("count"), int):
                self.count = max(event["count"], 1)
            self.fraction[index] = 0.0
        elif kind == "progress":
            done = event.get("done")
            if isinstance(done, (int, float)):
                self.fraction[index] = max(self.fraction.get(index, 0.0),
                                           min(max(float(done), 0.0), 1.0))
        elif kind == "scene_done":
            self.fraction.pop(index, None)
            self.finished.append(Scene(event))
        elif kind == "scene_error":
            self.fraction.pop(index, None)
            self.failed.append(Failure(event))
        elif kind == "run_error":
            self.run_error = Failure(event)
        elif kind == "run_done":
            self.run_done = event
            self.fraction.clear()

    def counts(self):
        """(ok, skipped, failed) from run_done, else from the scenes seen."""
        if self.run_done:
            return tuple(int(self.run_done.get(k, 0) or 0) for k in ("ok", "skipped", "failed"))
        return (sum(s.status == "ok" for s in self.finished),
                sum(s.status == "skipped" for s in self.finished), len(self.failed))
