from django.urls import path

from shouhu.safeguarding import views

app_name = "safeguarding"

urlpatterns = [
    path("", views.report_list, name="list"),
    path("new/", views.report_new, name="new"),
    path("new/villages/", views.lookup_villages, name="villages"),
    path("new/children/", views.lookup_children, name="children"),
    path("<int:report_id>/", views.report_detail, name="detail"),
    path("<int:report_id>/receipt/", views.receipt, name="receipt"),
    path("<int:report_id>/attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path("<int:report_id>/accept/", views.accept, name="accept"),
    path("<int:report_id>/dispatch/", views.dispatch, name="dispatch"),
    path("<int:report_id>/measure/", views.measure, name="measure"),
    path("<int:report_id>/notify-town/", views.notify_town, name="notify_town"),
    path("<int:report_id>/result/", views.result, name="result"),
    path("<int:report_id>/assess/", views.assess, name="assess"),
    path("<int:report_id>/help/", views.help_request, name="help"),
    path("<int:report_id>/placement/", views.placement_start, name="placement"),
    path("<int:report_id>/placement/<int:placement_id>/end/", views.placement_end, name="placement_end"),
    path("<int:report_id>/commend/", views.commend, name="commend"),
]
