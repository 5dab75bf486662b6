"""canopy report: the HTML page has no external URL and no script, escapes
hostile scene names, puts failures and new alerts first, reads failure
records and JSONL logs; rendered by Debian's headless Chromium at desktop
and phone widths, the screenshot is not blank and shows the quick-look."""
import html.parser
import os
import shutil
import subprocess
import urllib.parse

import numpy as np
from osgeo import gdal

import canopytest as ct
import pictest as pt

HOSTILE = 'evil"<img src=x onerror=alert(1)>&\'x <script>'


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.urls, self.text, self.style = [], [], [], ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_style = tag == "style"
        for k, v in attrs:
            if k in ("href", "src", "action", "formaction", "poster", "srcset", "data"):
                self.urls.append((tag, k, v))
            assert not k.startswith("on"), "event handler attribute %s" % k

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        else:
            self.text.append(data)


def parse(path):
    p = Page()
    p.feed(open(path, encoding="utf-8").read())
    return p


def check_offline(p, base, allow_data=False):
    assert "script" not in p.tags and "iframe" not in p.tags and "link" not in p.tags, p.tags
    for tag, k, v in p.urls:
        u = urllib.parse.urlsplit(v)
        if v.startswith("#"):
            continue
        if allow_data and u.scheme == "data":
            assert v.startswith("data:image/png;base64,"), v[:40]
            continue
        assert u.scheme == "" and u.netloc == "" and not v.startswith("//"), (tag, k, v)
        target = os.path.join(base, urllib.parse.unquote(u.path))
        assert os.path.exists(target), "broken link %s" % v
    assert "url(" not in p.style and "@import" not in p.style, "external resources in CSS"


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(page, width, height, out):
    cmd = [chromium(), "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--screenshot=" + out, "--window-size=%d,%d" % (width, height),
           "--user-data-dir=" + os.path.dirname(out) + "/chrome-profile",
           "file://" + os.path.abspath(page)]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 0 and os.path.exists(out), p.stderr[-2000:]
    ds = gdal.Open(out)
    return np.dstack([ds.GetRasterBand(i + 1).ReadAsArray() for i in range(3)]).astype(int)


def check_screenshot(rgb, width, ql_w):
    assert rgb.shape[1] == width, rgb.shape
    assert rgb.std() > 20, "the screenshot is blank"
    # The scene's box, stretched to magenta in the quick-look, appears on the
    # page as a block as wide as the quick-look is drawn.
    mag = (rgb[:, :, 0] > 200) & (rgb[:, :, 1] < 80) & (rgb[:, :, 2] > 200)
    assert mag.sum() > 2000, "no quick-look in the screenshot (%d magenta pixels)" % mag.sum()
    # The longest magenta run of a row is the box in one quick-look.
    best = 0
    for row in mag[mag.sum(axis=1) > 0]:
        edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
        starts, ends = np.where(edges == 1)[0], np.where(edges == -1)[0]
        best = max(best, (ends - starts).max())
    x0, _, x1, _ = pt.MAGENTA_BOX
    drawn = best / (x1 - x0)
    assert 0.6 * ql_w < drawn < 1.15 * ql_w, "quick-look drawn %.0f px wide, expected about %d" % (
        drawn, ql_w)


def main():
    if not chromium():
        print("chromium is not installed (scripts/install-deps installs it)")
        raise SystemExit(ct.SKIP)
    with ct.tmpdir() as d:
        out = os.path.join(d, "out")
        os.mkdir(out)
        # Monitoring: the manifest has the alerts line, NAME.alerts.geojson
        # the changes ("change": "new" | "confirmed" | "dismissed").
        boxes = [(0.1 * i, 0.6, 0.1 * i + 0.08, 0.7) for i in range(5)]
        for name, counts, changes in [("quiet", {"road": 2}, ["confirmed"]),
                                      ("busy", {"road": 9, "slash_burn": 4},
                                       ["new", "new", "confirmed", "new", "dismissed"])]:
            scene = pt.make_scene(os.path.join(d, name + ".tif"), 900, 600)
            pt.write_markers(os.path.join(out, name + ".markers.geojson"), scene,
                             [("road", (0.1, 0.1, 0.4, 0.5))])
            pt.write_markers(os.path.join(out, name + ".alerts.geojson"), scene,
                             [("road", b) for b in boxes[:len(changes)]], change=changes)
            pt.write_manifest(out, name, scene, counts, date="2024-05-01",
                              alerts={"summary": "%d new alerts (road)" % changes.count("new"),
                                      "state": "/state"})
        # A failed scene with a hostile name, and one known from a JSONL log only.
        pt.probe("failure", out, HOSTILE, "/in/" + HOSTILE + ".tif", "format",
                 "bad <b>tiff</b>\nline 2")
        log = os.path.join(d, "run.jsonl")
        with open(log, "w") as f:
            f.write('{"v":1,"event":"run_start"}\n{"v":1,"event":"scene_error","index":3,'
                    '"scene":"/in/gone.tif","status":"io","message":"cannot open /in/gone.tif"}\n')
        r = ct.canopy("report", out, "--events", log)
        page = os.path.join(out, "report.html")
        p = parse(page)
        check_offline(p, out)
        text = "".join(p.text)
        assert HOSTILE in text, "the hostile name is not shown as text"
        raw = open(page, encoding="utf-8").read()
        assert "<script>" not in raw and "bad <b>" not in raw and "<img src=x" not in raw
        assert "cannot open /in/gone.tif" in text and "line 2" in text
        # New alerts counted from busy.alerts.geojson: 3 in the summary.
        assert "3 new alerts (road)" in text
        stats = text[:text.index("Failures")]
        assert "3new alerts" in stats, stats
        # Order: failures, then new alerts, then the rest.
        order = [n for n in (HOSTILE, "gone", "busy", "quiet") if n in text]
        pos = [text.index(n) for n in order]
        assert order == [HOSTILE, "gone", "busy", "quiet"] and pos == sorted(pos), (order, pos)
        assert "scenes" in r.stderr or "scene" in r.stderr

        # Written elsewhere: links relative to the page; inlined images.
        other = os.path.join(d, "mail")
        os.mkdir(other)
        page2 = os.path.join(other, "night.html")
        ct.canopy("report", out, "-o", page2, "--inline", "-q")
        p2 = parse(page2)
        check_offline(p2, other, allow_data=True)
        assert any(v.startswith("data:image/png") for _, k, v in p2.urls if k == "src")

        # Rendered: desktop and phone.
        shots = os.path.join(d, "shots")
        os.mkdir(shots)
        for width, height in ((1280, 2200), (390, 3000)):
            rgb = screenshot(page, width, height, os.path.join(shots, "w%d.png" % width))
            check_screenshot(rgb, width, min(width - 58, 550))
            if os.environ.get("CANOPY_KEEP_SHOTS"):
                shutil.copy(os.path.join(shots, "w%d.png" % width),
                            os.path.join(os.environ["CANOPY_KEEP_SHOTS"], "w%d.png" % width))
        # Printed (print style sheet): a PDF with pages and the quick-looks in it.
        pdf = os.path.join(shots, "report.pdf")
        cmd = [chromium(), "--headless", "--disable-gpu", "--no-first-run",
               "--user-data-dir=" + shots + "/chrome-profile", "--no-pdf-header-footer",
               "--print-to-pdf=" + pdf, "file://" + os.path.abspath(page)]
        if os.geteuid() == 0:
            cmd.insert(1, "--no-sandbox")
        subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        data = open(pdf, "rb").read()
        assert data.startswith(b"%PDF"), data[:20]
        pages = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
        assert pages >= 1 and b"/Subtype /Image" in data, (pages, len(data))

        # No scene at all: exit 1 with a message naming the folder.
        empty = os.path.join(d, "empty")
        os.mkdir(empty)
        e = ct.canopy("report", empty, check=False)
        assert e.returncode == 1 and empty in e.stderr, (e.returncode, e.stderr)
        assert ct.canopy("report", check=False).returncode == 2
        assert ct.canopy("report", out, "--bogus", check=False).returncode == 2
        pt.no_temporaries(out)
        # A success removes the failure record it replaces; other files stay.
        pt.probe("unfail", out, HOSTILE)
        assert not os.path.exists(os.path.join(out, HOSTILE + ".failed.json"))
        with open(os.path.join(out, "x.failed.json"), "w") as f:
            f.write('{"not": "ours"}')
        pt.probe("unfail", out, "x")
        assert os.path.exists(os.path.join(out, "x.failed.json"))


ct.main(main)
