from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntakeConfig(AppConfig):
    name = "shouhu.intake"
    label = "intake"
    verbose_name = _("摸底排查导入导出")
