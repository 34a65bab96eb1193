from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "shouhu.notify"
    label = "notify"
    verbose_name = _("通知")

    def ready(self) -> None:
        from django.core import checks

        from shouhu.notify import channels

        checks.register(channels.check_channels)
