import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shouhu.org.regions import RegionImportError, decode, import_regions, read_rows


class Command(BaseCommand):
    help = (
        "Import an official division-code CSV (columns 统计用区划代码, 名称 and optionally 城乡分类代码; "
        "UTF-8 or GBK). All or nothing; prints a JSON summary."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--within", default="", help="only codes with this prefix, e.g. 320412")

    def handle(self, *args, file, within, **options):
        try:
            rows = read_rows(decode(Path(file).read_bytes()))
            result = import_regions(rows, within=within)
        except (OSError, RegionImportError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result.__dict__, ensure_ascii=False))
