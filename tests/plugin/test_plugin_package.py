"""QGIS plugin, the package: metadata.txt has what QGIS's plugin manager
reads, with canopy's version; scripts/install-plugin installs it into a
plugins folder (replacing an older copy) and packs a zip that QGIS's own
"Install from ZIP" code unpacks as the plugin "canopy"; QGIS (qgis.utils)
finds, loads and starts it from there: the provider "canopy" with its icon,
its setting and its two algorithms and their parameters; the setting, the
CANOPY variable and PATH are tried in that order for the canopy program and
a run uses the one found; unloading removes the provider and its setting.
"""
import configparser
import os
import stat
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canopytest as ct  # noqa: E402
import qgistest as Q  # noqa: E402

Q.start(load_plugin=False)
import processing  # noqa: E402
import qgis.utils  # noqa: E402
from processing.core.ProcessingConfig import ProcessingConfig  # noqa: E402
from qgis.core import (Qgis, QgsApplication, QgsProcessingException,  # noqa: E402
                       QgsProcessingParameterDefinition)

sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python"))
from pyplugin_installer.unzip import unzip  # noqa: E402  (QGIS's "Install from ZIP")

SOURCE = os.path.join(Q.PLUGIN_DIR, "canopy")
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author")


def source_files():
    return sorted(os.path.relpath(os.path.join(r, f), SOURCE)
                  for r, _, fs in os.walk(SOURCE) for f in fs if not f.endswith(".pyc"))


def installed_files(folder):
    return sorted(os.path.relpath(os.path.join(r, f), folder)
                  for r, _, fs in os.walk(folder) for f in fs)


def check_metadata():
    version = ct.canopy("--version").stdout.split()[1]
    cp = configparser.ConfigParser()
    with open(os.path.join(SOURCE, "metadata.txt")) as f:
        cp.read_file(f)
    meta = dict(cp["general"])
    missing = [k for k in REQUIRED if not meta.get(k.lower())]
    assert not missing, missing
    assert meta["version"] == version, (meta["version"], version)
    assert meta["hasprocessingprovider"] == "yes"
    assert os.path.isfile(os.path.join(SOURCE, meta["icon"]))
    major, minor = (int(x) for x in meta["qgisminimumversion"].split(".")[:2])
    assert major * 10000 + minor * 100 <= Qgis.QGIS_VERSION_INT, meta["qgisminimumversion"]
    return version


def install(d):
    """Installs with --dest (over a stale copy) and through the zip; returns
    the plugins folder QGIS's unzip filled."""
    dest = os.path.join(d, "plugins-a")
    os.makedirs(os.path.join(dest, "canopy"))
    with open(os.path.join(dest, "canopy", "removed_long_ago.py"), "w") as f:
        f.write("raise ImportError\n")
    ct.run([ct.PYTHON3, ct.script("install-plugin"), "--dest", dest])
    assert installed_files(os.path.join(dest, "canopy")) == source_files(), \
        installed_files(os.path.join(dest, "canopy"))
    z = os.path.join(d, "canopy.zip")
    ct.run([ct.PYTHON3, ct.script("install-plugin"), "--zip", z])
    names = zipfile.ZipFile(z).namelist()
    assert sorted(names) == ["canopy/" + f for f in source_files()], names
    # installer.py's rule: the shortest path to a metadata.txt names the plugin
    assert os.path.split(sorted(f for f in names if f.endswith("metadata.txt"))[0])[0] == "canopy"
    plugins = os.path.join(d, "plugins-b")
    unzip(z, plugins)
    assert installed_files(os.path.join(plugins, "canopy")) == source_files()
    return plugins


def check_algorithms(provider):
    algs = {a.id(): a for a in provider.algorithms()}
    assert sorted(algs) == ["canopy:classifyfolder", "canopy:classifyscene",
                            "canopy:monitorarea"], sorted(algs)
    assert algs["canopy:classifyscene"].displayName() == "Classify scene"
    assert algs["canopy:classifyfolder"].displayName() == "Classify folder"
    assert algs["canopy:monitorarea"].displayName() == "Monitor area"
    for alg in algs.values():
        p = {d.name(): d for d in alg.parameterDefinitions()}
        assert p["CHIP"].defaultValue() == 256 and p["STRIDE"].defaultValue() == 0
        assert p["MODEL"].flags() & QgsProcessingParameterDefinition.FlagOptional
        assert p["LOAD_OUTPUTS"].defaultValue() is True and p["TTA"].defaultValue() is False
        assert p["OUTPUT_FOLDER"].isDestination()
        assert "EXTRA_ARGS" not in p   # every option typed: the modeler and batch check them
        for name in ("THREADS", "BANDS", "SCALE_RANGE", "GSD", "NATIVE_GSD", "MIN_VALID",
                     "PRECISION", "PROBS_TYPE", "SPLIT_MASKS", "FORMAT", "CREATION_OPTIONS"):
            assert p[name].flags() & QgsProcessingParameterDefinition.FlagAdvanced, name
        outputs = {o.name() for o in alg.outputDefinitions()}
        want = ({"ALERTS_RASTER", "ALERTS_VECTOR", "NEW", "CONFIRMED", "DISMISSED"}
                if alg.id() == "canopy:monitorarea" else {"PROBS", "MASKS", "MARKERS_OUTPUT"})
        assert want | {"OUTPUT_FOLDER"} <= outputs, outputs
        assert not alg.icon().isNull() and "canopy" in alg.shortHelpString()


def check_lookup(d, runner):
    """Setting, then $CANOPY, then PATH; the program found is the one run."""
    real = os.environ["CANOPY"]
    bindir = os.path.join(d, "bin")
    os.makedirs(bindir)
    calls = os.path.join(d, "calls")
    wrapper = os.path.join(bindir, "canopy")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\necho "$0" >> "%s"\nexec "%s" "$@"\n' % (calls, real))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    path = os.environ["PATH"]
    assert runner.find_canopy(wrapper) == wrapper
    assert runner.find_canopy("") == real
    del os.environ["CANOPY"]
    os.environ["PATH"] = bindir + os.pathsep + path
    assert runner.find_canopy("") == wrapper
    os.environ["PATH"] = os.path.join(d, "nowhere")
    try:
        runner.find_canopy("")
        raise AssertionError("found a canopy where there is none")
    except QgsProcessingException as e:
        assert "canopy was not found" in str(e) and "CANOPY" in str(e), str(e)
    os.environ["PATH"], os.environ["CANOPY"] = path, real

    scene = Q.make_scenes(d, [(128, 128)])[0]
    ProcessingConfig.setSettingValue(runner.SETTING, wrapper)
    fb = Q.feedback()
    res = processing.run("canopy:classifyscene", {"INPUT": scene, "CHIP": 64,
                                                  "OUTPUT_FOLDER": os.path.join(d, "out")},
                         feedback=fb)
    ProcessingConfig.setSettingValue(runner.SETTING, "")
    assert fb.commands[0].startswith(wrapper + " classify --progress=jsonl "), fb.commands
    with open(calls) as f:   # canopy info (the model's labels) and canopy classify
        lines = f.read().splitlines()
    assert len(lines) == 2 and set(lines) == {wrapper}, lines
    assert os.path.isfile(res["PROBS"])


def run():
    with ct.tmpdir() as d:
        version = check_metadata()
        plugins = install(d)

        qgis.utils.plugin_paths.insert(0, plugins)
        sys.path.insert(0, plugins)
        qgis.utils.updateAvailablePlugins()
        assert "canopy" in qgis.utils.available_plugins, qgis.utils.available_plugins
        assert qgis.utils.pluginMetadata("canopy", "version") == version
        assert qgis.utils.loadPlugin("canopy") and qgis.utils.startPlugin("canopy")
        assert sys.modules["canopy"].__file__.startswith(plugins), sys.modules["canopy"].__file__
        registry = QgsApplication.processingRegistry()
        provider = registry.providerById("canopy")
        assert provider is not None and not provider.icon().isNull()
        assert "CANOPY_EXECUTABLE" in ProcessingConfig.settings
        check_algorithms(provider)
        check_lookup(d, sys.modules["canopy.runner"])

        assert qgis.utils.unloadPlugin("canopy")
        assert registry.providerById("canopy") is None
        assert "CANOPY_EXECUTABLE" not in ProcessingConfig.settings
        print("canopy %s: installed, zipped, loaded by QGIS from the zip, unloaded" % version)


Q.main(run)
