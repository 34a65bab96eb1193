import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shouhu.org.regions import (
    CODE_HEADERS,
    KIND_HEADERS,
    NAME_HEADERS,
    RegionImportError,
    decode,
    import_regions,
    read_rows,
)


class Command(BaseCommand):
    # The columns are named as the file names them (the headers the import matches).
    help = (
        f"Import an official division-code CSV (columns {CODE_HEADERS[0]}, {NAME_HEADERS[0]} and optionally "
        f"{KIND_HEADERS[0]}; UTF-8 or GBK). All or nothing; prints a JSON summary."
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
