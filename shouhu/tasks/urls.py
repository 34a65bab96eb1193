from django.urls import path

from shouhu.tasks import views, views_meeting

app_name = "tasks"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("requested/", views.requested, name="requested"),
    path("supervision/", views.supervision, name="supervision"),
    path("meeting/", views_meeting.meeting, name="meeting"),
    path("meeting.xlsx", views_meeting.meeting_xlsx, name="meeting_xlsx"),
    path("<int:task_id>/", views.detail, name="detail"),
    path("<int:task_id>/answers/", views.answers, name="answers"),
    path("<int:task_id>/close/", views.close, name="close"),
    path("<int:task_id>/accept/", views.accept, name="accept"),
    path("<int:task_id>/decline/", views.decline, name="decline"),
    path("<int:task_id>/progress/", views.progress, name="progress"),
    path("<int:task_id>/complete/", views.complete, name="complete"),
]
