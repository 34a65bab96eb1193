from django.urls import path

from shouhu.cases import views, views_pdf

app_name = "cases"

urlpatterns = [
    path("", views.case_list, name="list"),
    path("new/", views.case_new, name="new"),
    path("child/<uuid:pk>/chronology/", views.chronology, name="chronology"),
    path("<int:case_id>/", views.case_detail, name="detail"),
    path("<int:case_id>/assess/", views.assess, name="assess"),
    path("<int:case_id>/goal/", views.goal_add, name="goal"),
    path("<int:case_id>/action/", views.action_add, name="action"),
    path("<int:case_id>/refer/", views.refer, name="refer"),
    path("<int:case_id>/service/", views.service_add, name="service"),
    path("<int:case_id>/review/", views.review_add, name="review"),
    path("<int:case_id>/close/", views.close, name="close"),
    path("<int:case_id>/approve/", views.approve, name="approve"),
    path("<int:case_id>/reopen/", views.reopen, name="reopen"),
    path("<int:case_id>/worker/", views.assign_worker, name="worker"),
    path("<int:case_id>/summary.pdf", views_pdf.summary_pdf, name="summary_pdf"),
    path("<int:case_id>/assessment/<int:assessment_id>.pdf", views_pdf.assessment_pdf, name="assessment_pdf"),
]
