from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "shouhu.cases"
    verbose_name = _("个案管理")
    default_auto_field = "django.db.models.BigAutoField"
