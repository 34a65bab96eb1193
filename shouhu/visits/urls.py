from django.urls import path

from shouhu.visits import views, views_review

app_name = "visits"

urlpatterns = [
    path("", views.due_list, name="due"),
    path("review/", views_review.review, name="review"),
    path("child/<uuid:pk>/", views.child_visits, name="child"),
    path("child/<uuid:pk>/new/", views.visit_new, name="new"),
    path("child/<uuid:pk>/risk/", views.risk_set, name="risk"),
    path("<int:visit_id>/", views.visit_detail, name="detail"),
    path("<int:visit_id>/return/", views.visit_return, name="return"),
    path("<int:visit_id>/help/", views.help_request, name="help"),
    path("photo/<int:photo_id>/", views.photo, name="photo"),
]
