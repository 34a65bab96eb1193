from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language

from shouhu.api.api import api
from shouhu.org import mfa
from shouhu.org import views as org_views
from shouhu.org.access import public

urlpatterns = [
    path("", org_views.home, name="home"),
    path("login/", org_views.login_view, name="login"),
    path("logout/", org_views.logout_view, name="logout"),
    path("login/verify/", mfa.mfa_verify, name="mfa_verify"),
    path("login/mfa-setup/", mfa.mfa_setup, name="mfa_setup"),
    path("i18n/setlang/", public(set_language), name="set_language"),
    path("stats/", org_views.stats, name="stats"),
    path("children/", include("shouhu.registry.urls")),
    path("audit/", include("shouhu.audit.urls")),
    path("tasks/", include("shouhu.tasks.urls")),
    path("intake/", include("shouhu.intake.urls")),
    path("visits/", include("shouhu.visits.urls")),
    path("cases/", include("shouhu.cases.urls")),
    path("reports/", include("shouhu.safeguarding.urls")),
    path("notifications/", include("shouhu.notify.urls")),
    path("report/", include("shouhu.safeguarding.public_urls")),
    path("", include("shouhu.policy.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
