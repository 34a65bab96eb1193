"""The project's own lint: every user-facing string goes through gettext.

Walks the `shouhu` package with `ast` and fails on a string literal holding Chinese text that is
not the message of a gettext call (`_("…")`, `gettext_lazy("…")`, `ngettext("…", "…", n)`, …), so a
new `return HttpResponse("你好")` or `raise ValidationError(f"第{n}行…")` fails here. Docstrings and
comments are not messages; tests and migrations are not walked.

Some Chinese text is data, not a message, and must stay as it is: what the imports match in a file
(headers, their synonyms, cell values), official names and texts, demo data, values stored or
compared. Those modules, or those literals of a module, are listed below, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from shouhu.intake.dates import _YM, _YMD

ROOT = Path(__file__).resolve().parents[1]  # the shouhu package
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
GETTEXT = frozenset(
    {
        "_",
        "gettext",
        "gettext_lazy",
        "gettext_noop",
        "ngettext",
        "ngettext_lazy",
        "pgettext",
        "pgettext_lazy",
        "npgettext",
        "npgettext_lazy",
    }
)

# Modules whose Chinese literals are all data.
DATA_MODULES: dict[str, str] = {
    "intake/columns.py": "the survey sheet's headers, their synonyms and cell values: what the import matches",
    "org/catalogue.py": "the official catalogue (need types, duties, routes), synced into the database",
    "org/seed_units.py": "the joint meeting's member units: official names and duties",
    "org/regions.py": "the headers of an official division-code file, which the region import matches",
    "registry/demo.py": "synthetic demo data (names, places, situations)",
    "visits/demo.py": "synthetic demo data (visit notes)",
    "browser_testing.py": "a helper of the browser tests: finds a page's elements by their text",
    # The policy package is reviewed on its own: its legal texts, category names and parameter
    # labels are quoted from the documents they cite.
    "policy/rules.py": "policy package: the rules' findings and category names, citing their sources",
    "policy/entitlements.py": "policy package: entitlements as the documents name them",
    "policy/params.py": "policy package: parameter labels and their legal sources",
    "policy/facts.py": "policy package: the facts document's messages and labels",
    "policy/engine.py": "policy package: the engine's explanations, citing their sources",
    "policy/models.py": "policy package: the Jiangsu classes as the provincial document names them",
    "policy/services.py": "policy package: the legal source stored with a manual decision",
}

# Literals that are data in a module whose other Chinese text is for people.
DATA_LITERALS: dict[str, tuple[str, frozenset[str]]] = {
    "settings.py": (
        "the TOTP issuer, stored in authenticator apps; the language's own name (never translated)",
        frozenset({"守护 Shouhu", "简体中文"}),
    ),
    "intake/dates.py": ("the date patterns people type (年, 月, 日 are input)", frozenset({_YMD.pattern, _YM.pattern})),
    "intake/reader.py": (
        "the default ethnicity stored; a header suffix, committee suffixes and yes/no values "
        "that the reader matches in the file",
        frozenset({"汉族", "姓名", "村民委员会", "居民委员会", "村委会", "居委会", "村委", "村", "是", "否"}),
    ),
    "registry/models.py": ("the default ethnicity, a stored value", frozenset({"汉族"})),
}


def _modules() -> list[Path]:
    return sorted(
        p
        for p in ROOT.rglob("*.py")
        if "tests" not in p.relative_to(ROOT).parts
        and "migrations" not in p.relative_to(ROOT).parts
        and p.name != "conftest.py"
    )


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def untranslated(source: str) -> list[tuple[int, str]]:
    """(line, text) of each Chinese literal that is neither a docstring nor a gettext message."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and CJK.search(node.value)):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Expr):  # a docstring (or a bare string statement)
            continue
        if isinstance(parent, ast.Call) and _name(parent.func) in GETTEXT and node in parent.args:
            continue  # the message itself: a literal, as makemessages needs it (not an f-string)
        found.append((node.lineno, node.value))
    return found


def test_every_chinese_literal_goes_through_gettext():
    modules = _modules()
    assert len(modules) > 50 and ROOT / "org" / "views.py" in modules
    offenders = []
    for path in modules:
        where = path.relative_to(ROOT).as_posix()
        if where in DATA_MODULES:
            continue
        allowed = DATA_LITERALS.get(where, ("", frozenset()))[1]
        offenders += [
            f"shouhu/{where}:{line}: {text[:60]!r}"
            for line, text in untranslated(path.read_text(encoding="utf-8"))
            if text not in allowed
        ]
    assert offenders == [], "wrap these in gettext (or list them here as data, with the reason):\n" + "\n".join(
        offenders
    )


def test_the_allow_lists_name_existing_modules_and_literals():
    for where in [*DATA_MODULES, *DATA_LITERALS]:
        assert (ROOT / where).is_file(), where
    for where, literals in [*((w, lits) for w, (_reason, lits) in DATA_LITERALS.items())]:
        present = {text for _line, text in untranslated((ROOT / where).read_text(encoding="utf-8"))}
        assert literals <= present, f"{where}: no longer has {sorted(literals - present)}"


def test_the_lint_sees_a_bare_message_and_accepts_a_wrapped_one():
    found = untranslated(
        "from django.http import HttpResponse\n"
        "from django.utils.translation import gettext as _\n"
        "def view(request, n):\n"
        '    """视图。"""\n'
        "    # 注释\n"
        '    ok = _("第%(n)d行") % {"n": n}\n'
        '    also = gettext_lazy("台账") if n else ngettext("%(n)d 人", "%(n)d 人", n)\n'
        '    bad = _(f"第{n}行")\n'
        '    return HttpResponse("你好")\n'
    )
    assert sorted(line for line, _text in found) == [8, 8, 9]  # the f-string has two literal parts
