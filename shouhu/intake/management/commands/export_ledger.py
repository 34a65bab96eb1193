"""Export the ledger a user sees to .xlsx, as that user would from the ledger page (and audited)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from shouhu.intake.export import export_ledger
from shouhu.org.access import Cap, scope_for
from shouhu.org.models import Region, User
from shouhu.registry.selectors import LedgerFilters


class Command(BaseCommand):
    help = (
        "Write the ledger USERNAME sees (optionally one region of it) to OUT.xlsx, identifiers masked "
        "unless --unmasked and the user may unmask; prints a JSON summary; the export is audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help="the .xlsx file to write")
        parser.add_argument("--as", dest="username", required=True, help="the user whose ledger and rights apply")
        parser.add_argument("--region", default="", help="a 12-digit region code inside the user's regions")
        parser.add_argument("--status", default="active", choices=["active", "exited", "all"])
        parser.add_argument("--unmasked", action="store_true", help="full ID numbers, phones and addresses")

    def handle(
        self, *args: Any, out: str, username: str, region: str, status: str, unmasked: bool, **options: Any
    ) -> None:
        user = User.objects.select_related("organization").filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(_("没有名为 %(username)r 的有效用户。") % {"username": username})
        scope = scope_for(user)
        if not scope.can(Cap.LEDGER_VIEW):
            raise CommandError(_("用户 %(username)s 无权查看儿童台账，不能导出台账。") % {"username": username})
        if unmasked and not scope.can(Cap.UNMASK):
            raise CommandError(
                _("用户 %(username)s 无权查看完整证件号，不能使用 --unmasked。") % {"username": username}
            )
        if region:
            if not (region.isdigit() and len(region) == 12 and Region.objects.filter(code=region).exists()):
                raise CommandError(_("区划代码 %(code)r 不存在（应为12位统计用区划代码）。") % {"code": region})
            if not scope.covers_region(region):
                raise CommandError(
                    _("区划 %(code)s 不在用户 %(username)s 的工作范围内。") % {"code": region, "username": username}
                )
        target = Path(out)
        if not target.parent.is_dir():
            raise CommandError(_("目录 %(dir)s 不存在。") % {"dir": target.parent})
        filters = LedgerFilters(region=region, status=status)
        # Write beside the target and rename: a failed export leaves no half-written file.
        fd, partial = tempfile.mkstemp(prefix=".export-", suffix=".xlsx", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                result = export_ledger(stream, actor=user, filters=filters, unmasked=unmasked, via="command")
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        self.stdout.write(
            json.dumps(
                {
                    "out": str(target),
                    "rows": result.rows,
                    "masked": result.detail["masked"],
                    "unmasked_rows": result.unmasked_rows,
                },
                ensure_ascii=False,
            )
        )
