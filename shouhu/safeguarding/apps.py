from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SafeguardingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shouhu.safeguarding"
    verbose_name = _("强制报告与应急处置")
