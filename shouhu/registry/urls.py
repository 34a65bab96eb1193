from django.urls import path

from shouhu.registry import views

app_name = "registry"
urlpatterns = [
    path("", views.ledger, name="ledger"),
    path("search/", views.ledger_search, name="search"),
    path("new/", views.child_create, name="child_create"),
    path("<uuid:pk>/", views.child_detail, name="child_detail"),
    path("<uuid:pk>/edit/", views.child_edit, name="child_edit"),
    path("<uuid:pk>/household/", views.household_edit, name="household_edit"),
    path("<uuid:pk>/family/new/", views.member_edit, name="member_create"),
    path("<uuid:pk>/family/<int:member_id>/", views.member_edit, name="member_edit"),
    path("<uuid:pk>/family/<int:member_id>/delete/", views.member_delete, name="member_delete"),
    path("<uuid:pk>/entrustment/new/", views.entrustment_edit, name="entrustment_create"),
    path("<uuid:pk>/entrustment/<int:entrustment_id>/", views.entrustment_edit, name="entrustment_edit"),
    path("<uuid:pk>/entrustment/<int:entrustment_id>/renew/", views.entrustment_renew, name="entrustment_renew"),
    path("<uuid:pk>/entrustment/<int:entrustment_id>/scan/", views.entrustment_scan, name="entrustment_scan"),
    path("<uuid:pk>/exit/", views.child_exit, name="child_exit"),
    path("<uuid:pk>/reenter/", views.child_reenter, name="child_reenter"),
    path("<uuid:pk>/unmask/", views.unmask, name="unmask"),
]
