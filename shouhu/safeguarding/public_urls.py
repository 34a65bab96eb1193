"""The public entrance (no account): /report/, /report/status/, /report/qr/."""

from django.urls import path

from shouhu.safeguarding import public

app_name = "public_report"

urlpatterns = [
    path("", public.report_form, name="form"),
    path("status/", public.report_status, name="status"),
    path("qr/", public.report_qr, name="qr"),
]
