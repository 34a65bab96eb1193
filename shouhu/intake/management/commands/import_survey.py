"""Import a survey file as a user would from the import page: all or nothing, recorded and audited."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from shouhu.intake.preview import preview_import
from shouhu.intake.reader import SurveyFileError
from shouhu.intake.report import error_report
from shouhu.intake.services import COUNT_KEYS, import_commit
from shouhu.org.access import Cap, scope_for
from shouhu.org.models import User


class Command(BaseCommand):
    help = (
        "Import the survey FILE (.xlsx, .xls, .csv) into the ledger of USERNAME, all or nothing; prints a "
        "JSON summary; exit code 1 when a row is invalid (then nothing is imported). --dry-run only previews; "
        "--report writes the error workbook."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the survey file")
        parser.add_argument("--as", dest="username", required=True, help="the user whose scope and rights apply")
        parser.add_argument("--dry-run", action="store_true", help="preview only: write nothing")
        parser.add_argument("--report", default="", help="write the error workbook (.xlsx) here")

    def handle(self, *args: Any, file: str, username: str, dry_run: bool, report: str, **options: Any) -> None:
        user = User.objects.select_related("organization").filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(_("没有名为 %(username)r 的有效用户。") % {"username": username})
        if not scope_for(user).can(Cap.LEDGER_EDIT):
            raise CommandError(_("用户 %(username)s 无权修改儿童台账，不能导入。") % {"username": username})
        source = Path(file)
        if not source.is_file():
            raise CommandError(_("文件 %(file)s 不存在。") % {"file": file})
        target = Path(report) if report else None
        if target is not None and not target.parent.is_dir():
            raise CommandError(_("目录 %(dir)s 不存在。") % {"dir": target.parent})
        data = source.read_bytes()
        try:
            if dry_run:
                preview = preview_import(actor=user, source=data, filename=source.name)
                counts: dict[str, Any] = preview.summary()
                summary: dict[str, Any] = {**{k: counts.get(k, 0) for k in COUNT_KEYS[:4]}, "committed": False}
            else:
                imp = import_commit(actor=user, source=data, filename=source.name)
                preview = imp.preview  # type: ignore[attr-defined]
                summary = {
                    **{k: imp.counts.get(k, 0) for k in COUNT_KEYS},
                    "committed": imp.state == "committed",
                    "import": imp.pk,
                }
                if imp.counts.get("not_applied_rows"):
                    summary["not_applied_rows"] = imp.counts["not_applied_rows"]
        except SurveyFileError as exc:
            raise CommandError(str(exc)) from None
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("；".join(getattr(exc, "messages", [str(exc)]))) from None
        if target is not None:
            _write(target, error_report(source=data, filename=source.name, preview=preview))
            summary["report"] = str(target)
        self.stdout.write(json.dumps(summary, ensure_ascii=False))
        if not preview.ok:
            invalid = preview.counts["invalid"]
            raise CommandError(
                ngettext("有 %(n)d 行有错误，未导入任何数据。", "有 %(n)d 行有错误，未导入任何数据。", invalid)
                % {"n": invalid},
                returncode=1,
            )


def _write(target: Path, content: bytes) -> None:
    """Write beside the target and rename: a failed write leaves no half-written file."""
    fd, partial = tempfile.mkstemp(prefix=".report-", suffix=".xlsx", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(content)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
