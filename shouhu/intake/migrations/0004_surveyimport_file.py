# A survey import's kept file: from `content` (base64 of the bytes, encrypted as text by
# crypto.encrypt and base64 again) to `file` (the bytes encrypted by crypto.encrypt_bytes, no base64).
# Row by row (a kept file can be 20 MB) and through the raw columns, so the conversion is the one
# stated here, whatever the fields do by the time this runs. Reversible: `migrate intake 0003`.

import base64

from django.db import migrations

import shouhu.lib.fields
from shouhu.lib import crypto


def file_from_content(stored: str) -> bytes | bytearray:
    """The raw `content` column of a row as its raw `file` column."""
    if not stored:
        return b""
    return crypto.encrypt_bytes(base64.b64decode(crypto.decrypt(stored)))


def content_from_file(stored: bytes | memoryview | None) -> str:
    """The raw `file` column of a row as its raw `content` column."""
    if stored is None or len(stored) == 0:
        return ""
    return crypto.encrypt(base64.b64encode(crypto.decrypt_bytes(stored)).decode("ascii"))


def _convert(apps, schema_editor, source, target, convert):
    SurveyImport = apps.get_model("intake", "SurveyImport")
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    table, pk, source, target = (quote(name) for name in (SurveyImport._meta.db_table,
                                                           SurveyImport._meta.pk.column, source, target))
    # The ids first: SQLite does not isolate a running SELECT from this connection's UPDATEs.
    ids = list(SurveyImport.objects.using(connection.alias).order_by("pk").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        for import_id in ids:
            cursor.execute(f"SELECT {source} FROM {table} WHERE {pk} = %s", [import_id])
            value = convert(cursor.fetchone()[0])
            cursor.execute(f"UPDATE {table} SET {target} = %s WHERE {pk} = %s", [value, import_id])


def forwards(apps, schema_editor):
    _convert(apps, schema_editor, "content", "file", file_from_content)


def backwards(apps, schema_editor):
    _convert(apps, schema_editor, "file", "content", content_from_file)


class Migration(migrations.Migration):

    dependencies = [
        ('intake', '0003_background_jobs'),
    ]

    operations = [
        migrations.AddField(
            model_name='surveyimport',
            name='file',
            field=shouhu.lib.fields.EncryptedBinaryField(blank=True, default=b'', verbose_name='文件内容'),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(
            model_name='surveyimport',
            name='content',
        ),
    ]
