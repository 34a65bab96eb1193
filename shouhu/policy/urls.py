from django.urls import path

from shouhu.policy import views

app_name = "policy"
urlpatterns = [
    path("children/<uuid:pk>/policy/", views.child_policy, name="child"),
    path("children/<uuid:pk>/policy/proposals/<int:proposal_id>/", views.proposal_decide, name="decide"),
    path("children/<uuid:pk>/policy/manual/", views.manual_category, name="manual"),
    path("children/<uuid:pk>/policy/entitlements/<int:entitlement_id>/", views.entitlement_record, name="entitlement"),
    path("proposals/", views.proposals, name="proposals"),
    path("policy/parameters/", views.parameters, name="parameters"),
]
