import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FACTS = {
    "as_of": "2026-11-28",
    "child": {
        "birth_date": "2014-05-01",
        "hukou_type": "rural",
        "disability": None,
        "serious_illness": False,
        "household_assistance": [],
        "street_child": False,
        "lives_with_parents": False,
    },
    "parents": [
        {"role": "father", "situations": [{"kind": "imprisoned", "since": "2025-01-01", "until": None}]},
        {"role": "mother", "situations": [{"kind": "lost_contact", "since": "2026-03-01", "until": None}]},
    ],
}


def run(stdin: str):
    return subprocess.run(
        [sys.executable, "manage.py", "classify", "--json", "-"],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "SHOUHU_DEMO": "1", "SHOUHU_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"},
        timeout=60,
    )


def test_classify_prints_categories_with_sources_without_a_database():
    # The database URL points nowhere: the command must not touch it.
    result = run(json.dumps(FACTS))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    de_facto = next(c for c in out["categories"] if c["code"] == "de_facto_unsupported")
    assert "民发〔2019〕62号" in de_facto["source"]
    assert out["jiangsu_class"] == 2
    units = {e["code"]: e["unit"] for e in out["entitlements"]}
    assert units["de_facto_allowance"] == "civil_affairs"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda f: f.update(as_of="2026-02-30"), "as_of"),
        (lambda f: f["child"].update(hukou_type="city"), "child.hukou_type"),
        (lambda f: f["parents"][0]["situations"][0].update(kind="jail"), "parents[0].situations[0].kind"),
        (lambda f: f["child"].update(disability={"grade": 7, "type": "physical"}), "child.disability.grade"),
    ],
)
def test_invalid_input_exits_2_naming_the_field(mutate, field):
    facts = json.loads(json.dumps(FACTS))
    mutate(facts)
    result = run(json.dumps(facts))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(field + ":")


def test_not_json_exits_2():
    result = run("{not json")
    assert result.returncode == 2 and "JSON" in result.stderr
