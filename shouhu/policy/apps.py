from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PolicyConfig(AppConfig):
    name = "shouhu.policy"
    label = "policy"
    verbose_name = _("政策引擎")

    def ready(self) -> None:
        from shouhu.lib.refcache import clear_on_change
        from shouhu.policy import signals  # noqa: F401
        from shouhu.policy.models import PolicyParameter

        clear_on_change(PolicyParameter)
