"""The label-file reader of `canopy evaluate` (cnp_label_table_read) against
Python's csv module: an excerpt of Kaggle's train_v2.csv and the same rows
with CRLF, a BOM, quotes, blank lines and no final newline; duplicates and
unknown tags counted; malformed files rejected with the right line."""
import csv
import io
import os

import evaltest as et
from evaltest import ct

EXCERPT = os.path.join(et.DATA, "train_v2_excerpt.csv")


def reference(text, labels):
    """Rows, line numbers and counts as the csv module reads `text`."""
    if text.startswith("\ufeff"):
        text = text[1:]
    rdr = csv.reader(io.StringIO(text, newline=""))
    rows, seen, dups, conflicting, unknown, unknown_rows = [], {}, 0, 0, {}, 0
    header = None
    for rec in rdr:
        end_line = rdr.line_num
        start_line = end_line - sum(f.count("\n") + f.count("\r") - f.count("\r\n")
                                    for f in rec)
        if rec == [] or (len(rec) == 1 and rec[0].strip() == ""):
            continue
        if header is None:
            header = rec
            assert [h.strip().lower() for h in header] == ["image_name", "tags"], header
            continue
        assert len(rec) == 2, rec
        name, tags = rec[0].strip(), rec[1].split()
        known = sorted({t for t in tags if t in labels}, key=labels.index)
        unk = [t for t in tags if t not in labels]
        for t in unk:
            unknown[t] = unknown.get(t, 0) + 1
        unknown_rows += bool(unk)
        if name in seen:
            dups += 1
            conflicting += seen[name] != known
            continue
        seen[name] = known
        rows.append({"name": name, "line": start_line, "tags": known})
    return {"rows": rows, "n_duplicates": dups, "n_duplicates_conflicting": conflicting,
            "n_unknown_tags": sum(unknown.values()), "n_unknown_rows": unknown_rows,
            "unknown": unknown}


def check_same(path, text, labels=et.KAGGLE_LABELS):
    _, got = et.probe("labels", path, ",".join(labels))
    want = reference(text, labels)
    assert got is not None, path
    assert len(got["rows"]) == len(want["rows"]), (path, len(got["rows"]), len(want["rows"]))
    for g, w in zip(got["rows"], want["rows"]):
        assert g == w, (path, g, w)
    for k in ("n_duplicates", "n_duplicates_conflicting", "n_unknown_tags", "n_unknown_rows",
              "unknown"):
        assert got[k] == want[k], (path, k, got[k], want[k])
    return got


def expect_error(d, name, content, line, words):
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(content)
    p, _ = et.probe("labels", path, ",".join(et.KAGGLE_LABELS), check=False)
    assert p.returncode == 1, (name, p.returncode, p.stdout, p.stderr)
    where = "%s:%d:" % (path, line) if line else path + ":"
    assert where in p.stderr, (name, where, p.stderr)
    for w in words:
        assert w in p.stderr, (name, w, p.stderr)
    assert "Traceback" not in p.stderr and p.stdout == "", (name, p.stdout)


def test():
    with open(EXCERPT, newline="") as f:
        text = f.read()
    lines = text.splitlines()
    assert len(lines) == 603

    # The excerpt as it is: every row, all 17 labels, nothing unknown.
    got = check_same(EXCERPT, text)
    assert len(got["rows"]) == 602 and got["n_records"] == 602
    used = {t for r in got["rows"] for t in r["tags"]}
    assert used == set(et.KAGGLE_LABELS), sorted(set(et.KAGGLE_LABELS) - used)
    assert got["n_unknown_tags"] == 0 and got["n_duplicates"] == 0

    # A model with only some of the labels: the others are unknown tags.
    sub = ["agriculture", "clear", "primary", "water"]
    got = check_same(EXCERPT, text, sub)
    assert got["n_unknown_tags"] > 500 and "haze" in got["unknown"]

    with ct.tmpdir() as d:
        body = lines[:80]
        variants = {
            "crlf.csv": "\r\n".join(body) + "\r\n",
            "bom_no_final_newline.csv": "\ufeff" + "\n".join(body),
            "blank_lines.csv": "\n\n" + "\n".join(body[:1] + [""] + body[1:40] + ["", "   "]
                                                   + body[40:]) + "\n\n\n",
            "header_case_spaces.csv": "Image_Name , TAGS\n" + "\n".join(
                " %s , %s " % tuple(l.split(",")) for l in body[1:]) + "\n",
            "quoted.csv": "\"image_name\",\"tags\"\n" + "\n".join(
                "\"%s\",\"%s\"" % tuple(l.split(",")) for l in body[1:]) + "\n",
            "quoted_multiline.csv": "\n".join(body[:10]) +
                "\ntrain_x1,\"clear\nprimary  water\"\r\ntrain_x2,\"haze\r\nprimary\"\n" +
                "\"train_x3\",\"cloudy\"\n" + "\n".join(body[10:]) + "\n",
            "cr_only.csv": "\r".join(body) + "\r",
            "unknown_and_dups.csv": "\n".join(body[:20]) +
                "\ntrain_1,agriculture clear primary water\n"        # same tags as line 3
                "train_2,clear road primary\n"                       # conflicting repeat
                "train_n1,clear primary deforestation Clear\n"      # unknown tags
                "train_n2,\tclear\t\tprimary  \n"                    # tabs and spaces
                "train_n3,\n"                                        # no tags at all
                "train_n4,deforestation\n" + "\n".join(body[20:]) + "\n",
        }
        for name, content in variants.items():
            path = os.path.join(d, name)
            with open(path, "w", newline="", encoding="utf-8") as f:
                f.write(content)
            got = check_same(path, content)
            assert len(got["rows"]) >= 79, (name, len(got["rows"]))
        got = check_same(os.path.join(d, "unknown_and_dups.csv"), variants["unknown_and_dups.csv"])
        assert got["n_duplicates"] == 2 and got["n_duplicates_conflicting"] == 1, got
        assert got["duplicate_line"] == 21, got["duplicate_line"]
        assert got["unknown"] == {"deforestation": 2, "Clear": 1}, got["unknown"]
        n3 = [r for r in got["rows"] if r["name"] == "train_n3"]
        assert n3 and n3[0]["tags"] == [], n3

        # Malformed files: exit 1, PATH:LINE and what is wrong.
        head = "image_name,tags\ntrain_0,haze primary\n"
        expect_error(d, "no_header.csv", b"train_0,haze primary\ntrain_1,clear\n", 1,
                     ["image_name,tags"])
        expect_error(d, "three_fields.csv", (head + "train_1,clear,primary\n").encode(), 3,
                     ["2 fields", "found 3"])
        expect_error(d, "one_field.csv", (head + "train_1 clear primary\n").encode(), 3,
                     ["2 fields", "found 1"])
        expect_error(d, "unterminated.csv",
                     (head + "train_1,clear\ntrain_2,\"clear primary\ntrain_3,haze\n").encode(),
                     4, ["never closed"])
        expect_error(d, "stray_quote.csv", (head + "train_1,clear\ntrain_2,cle\"ar\n").encode(),
                     4, ["double quote"])
        expect_error(d, "after_quote.csv", (head + "train_1,\"clear\" x\n").encode(), 3,
                     ["after the closing quote"])
        expect_error(d, "empty_name.csv", (head + "train_1,clear\n,haze primary\n").encode(), 4,
                     ["empty image name"])
        expect_error(d, "nul.csv", (head + "train_1,cle\0ar\n").encode(), 3, ["NUL"])
        expect_error(d, "crlf_error.csv", (head + "a,b\r\nc,d\r\ne,f,g\r\n").replace(
            "\n", "\r\n").replace("\r\r", "\r").encode(), 5, ["found 3"])
        expect_error(d, "empty.csv", b"", 0, ["empty file"])
        expect_error(d, "header_only.csv", b"image_name,tags\r\n\r\n", 0, ["no images"])
        expect_error(d, "binary.csv", bytes(range(256)) * 4, 1, ["NUL"])

        p, _ = et.probe("labels", os.path.join(d, "nonexistent.csv"), "clear", check=False)
        assert p.returncode == 1 and "nonexistent.csv: cannot open" in p.stderr, p.stderr


ct.main(test)
