"""QGIS plugin, the zip for plugins.qgis.org: the zip `make plugin-zip` makes
(scripts/install-plugin --zip) passes the checks the plugin repository runs
on an upload (QGIS-Django's plugins/validator.py, as published): under the
size limit, no path information, no compiled Python, no __pycache__, .git or
__MACOSX folder, a sound zip, one top folder named as the repository allows,
__init__.py, metadata.txt with a [general] section holding every required
field, URLs with scheme and host (not the template's), an author without a
slash, a LICENSE, an icon that is in the zip. Beyond those: no tests in the
zip, the changelog names this version, the icon opens as an image of at
least 64 x 64 and the SVG as an SVG (16 and 24 px renderings drawn).
"""
import configparser
import io
import os
import re
import sys
import zipfile
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about",
            "tracker", "repository")
TEMPLATE_URLS = {"tracker": "http://bugs", "repository": "http://repo",
                 "homepage": "http://homepage"}
MAX_SIZE = 25000000


def check_zip(path):
    """The repository's checks, in its order; returns the metadata."""
    assert os.path.getsize(path) <= MAX_SIZE, os.path.getsize(path)
    z = zipfile.ZipFile(path)
    names = z.namelist()
    for name in names:
        assert ".." not in name and not name.startswith("/"), name
        assert ".pyc" not in name, name
        parts = name.split("/")
        for forbidden in ("__MACOSX", ".git", "__pycache__"):
            assert forbidden not in parts, name
    assert z.testzip() is None
    assert len({n.split("/")[0] for n in names}) == 1, names
    package = names[0][:names[0].index("/")]
    assert re.match(r"^[A-Za-z][A-Za-z0-9-_]+$", package), package
    assert package + "/__init__.py" in names and package + "/metadata.txt" in names, names
    parser = configparser.ConfigParser()
    parser.optionxform = str   # keys keep their case, as the repository reads them
    parser.read_file(io.StringIO(z.read(package + "/metadata.txt").decode("utf8")))
    assert parser.has_section("general")
    meta = dict(parser.items("general"))
    missing = [k for k in REQUIRED if k not in meta or not meta[k].strip()]
    assert not missing, missing
    icon = meta["icon"][2:] if meta["icon"].startswith("./") else meta["icon"]
    assert package + "/" + icon in names, icon
    for key, template in TEMPLATE_URLS.items():
        url = meta.get(key)
        parsed = urlparse(url or "")
        assert url != template and parsed.scheme in ("http", "https") and parsed.netloc, (key,
                                                                                          url)
    assert package + "/LICENSE" in names, names
    assert re.match(r"^[^/]+$", meta["author"]), meta["author"]
    for flag in ("experimental", "deprecated", "server"):
        assert meta.get(flag, "False") in ("True", "False"), (flag, meta.get(flag))
    assert "@" in meta["email"] and " " not in meta["email"], meta["email"]
    return z, package, meta


def run():
    with ct.tmpdir() as d:
        path = os.path.join(d, "canopy-qgis.zip")
        ct.run([ct.PYTHON3, ct.script("install-plugin"), "--zip", path])
        z, package, meta = check_zip(path)
        names = z.namelist()
        assert not [n for n in names if re.search(r"(^|/)tests?(/|$)|test_", n)], names
        version = ct.canopy("--version").stdout.split()[1]
        assert meta["version"] == version and meta["changelog"].split()[0] == version, meta
        assert meta["hasProcessingProvider"] == "yes" and meta["category"] == "Analysis"

        Q.start(load_plugin=False)
        from qgis.PyQt.QtGui import QImage
        from qgis.PyQt.QtSvg import QSvgRenderer
        image = QImage.fromData(z.read(package + "/" + meta["icon"]))
        assert not image.isNull() and image.width() >= 64 and image.height() >= 64, image.size()
        svg = QSvgRenderer(z.read(package + "/icon.svg"))
        assert svg.isValid()
        print("%s: %d files, %d bytes; passes the plugin repository's checks; icon %dx%d"
              % (os.path.basename(path), len(names), os.path.getsize(path), image.width(),
                 image.height()))


Q.main(run)
