"""The admin site: open only to the system and security administrators, through `scope_for`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.utils.translation import gettext_lazy


class ShouhuAdminSite(admin.AdminSite):
    site_header = gettext_lazy("守护 · 系统管理")
    site_title = gettext_lazy("守护")
    index_title = gettext_lazy("单位、用户与角色")

    def has_permission(self, request: HttpRequest) -> bool:
        from shouhu.org.access import Cap, scope_for
        from shouhu.org.mfa import mfa_pending

        scope = scope_for(request.user)
        # AccessMiddleware leaves the admin namespace to this site, so the second factor is checked here too.
        return (scope.can(Cap.ORG_ADMIN) or scope.can(Cap.ROLE_ADMIN)) and not mfa_pending(request)

    def login(self, request: HttpRequest, extra_context: Any = None) -> Any:
        from django.contrib.auth.views import redirect_to_login
        from django.shortcuts import redirect, render
        from django.urls import reverse
        from django.utils.translation import gettext as _

        from shouhu.org.mfa import mfa_pending

        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        index = reverse("admin:index", current_app=self.name)
        if mfa_pending(request):
            return redirect_to_login(index, login_url=reverse("mfa_verify"))
        if self.has_permission(request):
            return redirect(index)  # an administrator sent here after logging in
        return render(request, "403.html", {"message": _("您的角色无权访问系统管理。")}, status=403)


class ShouhuAdminConfig(AdminConfig):
    default_site = "shouhu.org.admin_site.ShouhuAdminSite"
