"""manage.py survey_template OUT.xlsx [--region CODE]: write the survey template (摸底排查表)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # Translated when the parser is made: argparse needs plain text (a lazy string breaks --help).
        return _("写出摸底排查表模板（.xlsx）；--region 为村（社区）代码时预填该村。")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", help=_("输出文件，如 template.xlsx"))
        parser.add_argument("--region", default="", help=_("12位区划代码（村、镇或区）"))
        parser.add_argument("--rows", type=int, default=500, help=_("预设格式的空行数"))

    def handle(self, *args: Any, **options: Any) -> None:
        from shouhu.intake.template import build_template
        from shouhu.org.models import Region

        region = None
        if options["region"]:
            region = Region.objects.filter(code=options["region"].strip()).select_related("parent").first()
            if region is None:
                raise CommandError(_("区划代码“%(code)s”不存在。") % {"code": options["region"]})
        if not options["out"].lower().endswith(".xlsx"):
            raise CommandError(_("输出文件应以 .xlsx 结尾。"))
        build_template(region, rows=max(1, min(options["rows"], 5000))).save(options["out"])
        self.stdout.write(_("已写出 %(file)s") % {"file": options["out"]})
