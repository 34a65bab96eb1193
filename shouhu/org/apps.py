from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync(sender, **kwargs):  # noqa: ANN001
    from shouhu.org.catalogue import sync_catalogue

    sync_catalogue()


class OrgConfig(AppConfig):
    name = "shouhu.org"
    label = "org"
    verbose_name = _("单位与用户")

    def ready(self) -> None:
        from shouhu.lib.refcache import clear_on_change
        from shouhu.org import signals  # noqa: F401
        from shouhu.org.models import Organization, Region

        clear_on_change(Region, Organization)

        post_migrate.connect(_sync, sender=self, dispatch_uid="shouhu.org.sync_catalogue")
