# The outbox marker of a report's notifications (fanned out by the worker after the commit), and
# the cache table of the public entrance's rate limits (settings.CACHES: DatabaseCache unless Redis).

from django.core.management import call_command
from django.db import migrations, models


def announced_already(apps, schema_editor):
    """Reports stored before this migration were announced in their own transaction."""
    Report = apps.get_model("safeguarding", "Report")
    Report.objects.using(schema_editor.connection.alias).filter(announced_at__isnull=True).update(
        announced_at=models.F("created_at"))


def create_cache_table(apps, schema_editor):
    """`createcachetable` for the database caches of settings.CACHES (skips existing tables; none
    with Redis), so `migrate` alone prepares a deployment, `make run` and the tests."""
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):

    dependencies = [
        ('safeguarding', '0002_alter_reportevent_kind'),
    ]

    operations = [
        migrations.AddField(
            model_name='report',
            name='announced_at',
            field=models.DateTimeField(blank=True, editable=False, null=True, verbose_name='通知发出时间'),
        ),
        migrations.RunPython(announced_already, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='report',
            index=models.Index(condition=models.Q(('announced_at__isnull', True)), fields=['id'], name='report_unannounced'),
        ),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
