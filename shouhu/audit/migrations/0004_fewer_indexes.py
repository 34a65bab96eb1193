"""Plain indexes for the audit log: no pattern-ops (LIKE) twins, none on object_type.

A `db_index` or `unique` text column gets a second, `varchar_pattern_ops` index on PostgreSQL;
no query of the log uses LIKE, and every event written pays for each index (a survey import
writes one per child). On SQLite altering the columns remakes the table, which drops the
append-only triggers of 0002: they are made again at the end.
"""

import importlib

from django.db import migrations, models


def _triggers_again(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        append_only = importlib.import_module("shouhu.audit.migrations.0002_append_only")
        for statement in append_only.SQLITE_UP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_alter_auditevent_action'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('view', '查看'), ('unmask', '查看完整证件号/电话'), ('create', '新增'), ('update', '修改'), ('exit', '退出台账'), ('reenter', '重新纳入台账'), ('export', '导出'), ('search', '检索'), ('login', '登录'), ('login_failed', '登录失败'), ('logout', '退出登录'), ('lockout', '账号锁定'), ('denied', '拒绝访问'), ('role_change', '角色变更'), ('admin_change', '管理配置变更'), ('token_issued', '签发接口令牌'), ('import', '导入'), ('import_undo', '撤销导入'), ('delete', '删除')], max_length=20, verbose_name='动作'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='object_id',
            field=models.CharField(blank=True, max_length=64, verbose_name='对象'),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='object_type',
            field=models.CharField(blank=True, max_length=40, verbose_name='对象类型'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['action'], name='audit_event_action'),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['object_id'], name='audit_event_object_id'),
        ),
        migrations.AddConstraint(
            model_name='auditevent',
            constraint=models.UniqueConstraint(fields=('hash',), name='audit_event_hash_unique'),
        ),
        migrations.RunPython(_triggers_again, migrations.RunPython.noop),
    ]
