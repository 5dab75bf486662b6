"""QGIS plugin, reading canopy's stdout (plugin/canopy/output.py, no QGIS
needed): the real output of `canopy classify --progress` on a folder with a
truncated scene and two good ones, fed in pieces of every size from one byte
up: progress never goes back, passes every 2.5 % step of each scene that is
read to its end, ends at 100; the finished scenes, their output paths, the
batch counts and the log lines are the same however the text is cut.
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

sys.path.insert(0, Q.PLUGIN_DIR)
from canopy.output import ClassifyOutput  # noqa: E402


def parse(text, sizes):
    """Feeds text in pieces of the given sizes (cycled); returns the parser,
    the percent after every piece and the log lines."""
    out, percents, log, i, k = ClassifyOutput(), [], [], 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        log += out.feed(text[i:i + n])
        percents.append(out.percent())
        i, k = i + n, k + 1
    log += out.feed("\n")
    return out, percents, log


def run():
    with ct.tmpdir() as d:
        inbox = os.path.join(d, "inbox")
        os.makedirs(inbox)
        scenes = Q.make_scenes(inbox, [(320, 256), (288, 224)], seed=21)
        Q.truncated_tiff(os.path.join(inbox, "broken.tif"))
        out_dir = os.path.join(d, "out")
        p = ct.canopy("classify", "--progress", "--chip", "32", "--threads", "1", "-o", out_dir,
                      inbox, check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        text = p.stdout
        plain = [x for x in text.splitlines() if not x.endswith(" - done.")
                 and not x.startswith("[1/3] ")]

        rng = random.Random(5)
        cuts = [[1], [2], [3], [7], [64], [len(text)], [rng.randint(1, 40) for _ in range(50)]]
        results = []
        for sizes in cuts:
            out, percents, log = parse(text, sizes)
            assert percents == sorted(percents), (sizes, percents)
            assert percents[-1] == 100.0, (sizes, percents[-1])
            assert log == plain, (sizes, log, plain)
            results.append(([(s.path, s.base, s.status) for s in out.finished], out.counts))
        finished, counts = results[0]
        assert all(r == results[0] for r in results), results
        assert finished == [(s, os.path.join(out_dir, "scene_%d" % i), "classified")
                            for i, s in enumerate(scenes)], finished
        assert counts == (2, 0, 1), counts

        # Byte by byte, each scene read to its end shows its 41 ticks.
        _, percents, _ = parse(text, [1])
        for k in (1, 2):   # [2/3] and [3/3]
            steps = {round(p - 100.0 * k / 3, 6) for p in percents
                     if 100.0 * k / 3 <= p <= 100.0 * (k + 1) / 3}
            want = {round(100.0 * t / 40 / 3, 6) for t in range(41)}
            assert steps == want, (k, sorted(steps))

        # Up to date: the second run's lines.
        p = ct.canopy("classify", "--progress", "--chip", "32", "-o", out_dir, *scenes)
        out, _, _ = parse(p.stdout, [5])
        assert [(s.base, s.status) for s in out.finished] == [
            (os.path.join(out_dir, "scene_%d" % i), "up to date") for i in range(2)], p.stdout
        assert out.counts == (0, 2, 0) and out.percent() == 0.0, (out.counts, out.percent())
        print("canopy's stdout parsed alike in %d ways of cutting it" % len(cuts))


ct.main(run)
