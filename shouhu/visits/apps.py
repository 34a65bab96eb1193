from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VisitsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shouhu.visits"
    verbose_name = _("走访与监护监督")

    def ready(self) -> None:
        from shouhu.visits import signals  # noqa: F401
