"""Django admin for organisations, users and roles, with separated administrators (三员分立).

The system administrator manages organisations and users; the security administrator manages
roles; neither sees children or the audit log (the ledger is not registered here at all), and
the audit administrator has no access to this site.
"""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from shouhu.audit.models import Action
from shouhu.audit.services import record
from shouhu.org.access import Cap, scope_for
from shouhu.org.models import Duty, NeedRoute, NeedType, Organization, Region, User, UserRole


class CapAdmin(admin.ModelAdmin):
    """Permissions from capabilities, not Django's model permissions; every change is audited."""

    edit_cap: Cap = Cap.ORG_ADMIN
    view_caps: tuple[Cap, ...] = (Cap.ORG_ADMIN,)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return any(scope_for(request.user).can(c) for c in self.view_caps)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return scope_for(request.user).can(self.edit_cap)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scope_for(request.user).can(self.edit_cap)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return scope_for(request.user).can(self.edit_cap)

    def _audit(self, request: HttpRequest, obj: Any, what: str, message: Any = "") -> None:
        record(
            actor=request.user,
            action=Action.ADMIN_CHANGE,
            object_type=obj._meta.model_name,
            object_id=obj.pk,
            request=request,
            detail={"op": what, "message": str(message)[:500]},
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, obj, "add", message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, obj, "change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            self._audit(request, obj, "delete")
        return super().log_deletions(request, queryset)


@admin.register(Region)
class RegionAdmin(CapAdmin):
    list_display = ["code", "name", "level", "kind", "parent", "is_synthetic"]
    list_filter = ["level", "is_synthetic"]
    search_fields = ["code", "name"]
    raw_id_fields = ["parent"]


@admin.register(Organization)
class OrganizationAdmin(CapAdmin):
    list_display = ["name", "short_name", "kind", "code", "parent", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "short_name", "code"]
    filter_horizontal = ["regions"]
    raw_id_fields = ["parent"]


class DutyInline(admin.TabularInline):
    model = Duty.need_types.through
    extra = 0


@admin.register(NeedType)
class NeedTypeAdmin(CapAdmin):
    list_display = ["code", "name", "description"]


@admin.register(NeedRoute)
class NeedRouteAdmin(CapAdmin):
    list_display = ["need_type", "unit", "primary"]
    list_filter = ["primary", "need_type"]


@admin.register(Duty)
class DutyAdmin(CapAdmin):
    list_display = ["unit", "order", "text"]
    list_filter = ["unit"]
    filter_horizontal = ["need_types"]


class UserRoleInline(admin.TabularInline):
    model = UserRole
    extra = 1

    def _can(self, request: HttpRequest, obj: Any = None) -> bool:
        # Nobody grants roles to themselves: separated administrators stay separated.
        if obj is not None and getattr(obj, "pk", None) == request.user.pk:
            return False
        return scope_for(request.user).can(Cap.ROLE_ADMIN)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._can(request, obj)


@admin.register(User)
class UserAdmin(CapAdmin, BaseUserAdmin):
    view_caps = (Cap.ORG_ADMIN, Cap.ROLE_ADMIN)
    inlines = [UserRoleInline]
    list_display = ["username", "full_name", "organization", "is_active", "is_demo", "last_login"]
    list_filter = ["is_active", "is_demo", "organization__kind"]
    search_fields = ["username", "full_name"]
    raw_id_fields = ["organization"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("个人信息"), {"fields": ("full_name", "organization", "email")}),
        (_("状态"), {"fields": ("is_active", "is_demo", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "usable_password", "password1", "password2", "full_name", "organization"),
            },
        ),
    )
    readonly_fields = ["last_login", "date_joined", "is_demo"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The security administrator edits roles (the inline) through the user's page.
        scope = scope_for(request.user)
        return scope.can(Cap.ORG_ADMIN) or scope.can(Cap.ROLE_ADMIN)

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        # Setting a password is user management (the system administrator); a security
        # administrator who could set one could log in as anybody, the audit administrator included.
        if not scope_for(request.user).can(Cap.ORG_ADMIN):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if not scope_for(request.user).can(Cap.ORG_ADMIN):
            return [f.name for f in User._meta.fields if f.name != "id"]
        return self.readonly_fields

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: Any) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is UserRole and (formset.new_objects or formset.deleted_objects):
            record(
                actor=request.user,
                action=Action.ROLE_CHANGE,
                object_type="user",
                object_id=form.instance.pk,
                request=request,
                detail={
                    "added": [o.role for o in formset.new_objects],
                    "removed": [o.role for o in formset.deleted_objects],
                },
            )


admin.site.unregister(Group) if admin.site.is_registered(Group) else None


# Unlocking a locked-out account and resetting a lost authenticator are the security
# administrator's work: the libraries' own admin pages, with our permissions and our audit.
class SecurityCapAdmin(CapAdmin):
    edit_cap = Cap.ROLE_ADMIN
    view_caps = (Cap.ROLE_ADMIN,)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


for _model in (AccessAttempt, TOTPDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(SecurityCapAdmin):
    list_display = ["username", "ip_address", "failures_since_start", "attempt_time"]
    search_fields = ["username", "ip_address"]
    readonly_fields = ["username", "ip_address", "user_agent", "failures_since_start", "attempt_time"]
    exclude = ["get_data", "post_data", "http_accept", "path_info"]


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(SecurityCapAdmin):
    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    search_fields = ["user__username"]
    fields = ["user", "name", "confirmed"]
    readonly_fields = ["user", "name", "confirmed"]
