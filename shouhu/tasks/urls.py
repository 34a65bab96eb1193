from django.urls import path

from shouhu.tasks import views

app_name = "tasks"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<int:task_id>/close/", views.close, name="close"),
]
