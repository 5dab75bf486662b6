"""QGIS plugin, reading canopy's event stream (plugin/canopy/events.py, no
QGIS needed): the real stdout of `canopy classify --progress=jsonl` on a
folder with a truncated scene and two good ones (checked line by line with
Python's json module against the contract: "v": 1, one object a line, every
event kind present), fed in pieces of every size from one byte up: progress
never goes back, reaches each scene's own progress values, ends at 100; the
finished scenes, their output paths (which exist), the failed scene with
canopy's own message, the counts and the events are the same however the
text is cut. Fields the plugin does not know are ignored; a line of another
version, or not JSON, is refused.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

sys.path.insert(0, Q.PLUGIN_DIR)
from canopy.events import EventReader, StreamError  # noqa: E402


def parse(text, sizes):
    """Feeds text in pieces of the given sizes (cycled); returns the reader,
    the percent after every piece and the events."""
    reader, percents, events, i, k = EventReader(), [], [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        events += reader.feed(text[i:i + n])
        percents.append(reader.percent())
        i, k = i + n, k + 1
    return reader, percents, events


def summary(reader):
    return ([(s.path, s.name, s.status, sorted(s.outputs.items())) for s in reader.finished],
            [(f.path, f.status, f.message) for f in reader.failed], reader.counts())


def run():
    with ct.tmpdir() as d:
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        scenes = Q.make_scenes(inbox, [(320, 256), (288, 224)], seed=21)
        broken = os.path.join(inbox, "broken.tif")
        Q.truncated_tiff(broken)
        out_dir = os.path.join(d, "out")
        p = ct.canopy("classify", "--progress=jsonl", "--chip", "32", "--threads", "1",
                      "-o", out_dir, inbox, check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        text = p.stdout
        independent = [json.loads(x) for x in text.splitlines()]
        assert all(e["v"] == 1 for e in independent), text
        kinds = [e["event"] for e in independent]
        assert kinds[0] == "run_start" and kinds[-1] == "run_done", kinds
        assert {"scene_start", "progress", "scene_done", "scene_error"} <= set(kinds), kinds
        stderr_error = [x for x in p.stderr.splitlines() if broken in x][0]

        rng = random.Random(5)
        cuts = [[1], [2], [3], [7], [64], [len(text)], [rng.randint(1, 40) for _ in range(50)]]
        results = []
        for sizes in cuts:
            reader, percents, events = parse(text, sizes)
            assert percents == sorted(percents), (sizes, percents)
            assert percents[-1] == 100.0, (sizes, percents[-1])
            assert events == independent, sizes
            results.append(summary(reader))
        assert all(r == results[0] for r in results), results
        finished, failed, counts = results[0]
        assert [(f[0], f[1], f[2]) for f in finished] == [
            (s, "scene_%d" % i, "ok") for i, s in enumerate(scenes)], finished
        for _, name, _, outputs in finished:
            outputs = dict(outputs)
            for kind, suffix in (("probs", ".probs.tif"), ("masks", ".masks.tif"),
                                 ("markers", ".markers.geojson"),
                                 ("manifest", ".manifest.json")):
                assert outputs[kind] == os.path.join(out_dir, name + suffix), outputs
                assert os.path.isfile(outputs[kind]), outputs[kind]
        assert len(failed) == 1 and failed[0][0] == broken and failed[0][1] in ("io", "format")
        assert stderr_error == "canopy classify: " + failed[0][2], (stderr_error, failed)
        assert counts == (2, 0, 1), counts

        # Each scene's progress events show up in the overall percent.
        reader, percents, _ = parse(text, [1])
        for e in independent:
            if e["event"] == "progress" and e["index"] == 3:
                assert any(abs(p - 100.0 * (2 + e["done"]) / 3) < 1e-9 for p in percents), e

        # Up to date: the second run's scenes are skipped, with their outputs.
        p = ct.canopy("classify", "--progress=jsonl", "--chip", "32", "-o", out_dir, *scenes)
        reader, _, _ = parse(p.stdout, [5])
        assert [(s.name, s.status) for s in reader.finished] == [
            ("scene_0", "skipped"), ("scene_1", "skipped")], p.stdout
        assert reader.counts() == (0, 2, 0) and reader.percent() == 100.0

        # A usage error: run_error only.
        p = ct.canopy("classify", "--progress=jsonl", "--chip", "-3", "-o", out_dir, scenes[0],
                      check=False)
        reader, _, _ = parse(p.stdout, [3])
        assert p.returncode == 2 and reader.run_error is not None, (p.returncode, p.stdout)
        assert reader.run_error.status == "usage" and "--chip" in reader.run_error.message

        # Unknown fields ignored; other versions and non-JSON refused.
        reader = EventReader()
        reader.feed('{"v":1,"event":"scene_done","index":1,"scene":"a","name":"a","status":'
                    '"ok","outputs":{"probs":"/o/a.probs.tif","future":"/o/a.x"},"new":[1]}\n'
                    '{"v":1,"event":"something_new","x":2}\n')
        assert reader.finished[0].output("probs") == "/o/a.probs.tif"
        for line in ('{"v":2,"event":"run_start"}\n', "[2/5] a.tif: 0...10\n"):
            try:
                EventReader().feed(line)
                raise AssertionError("accepted %r" % line)
            except StreamError:
                pass
        print("canopy's events read alike in %d ways of cutting them" % len(cuts))


ct.main(run)
