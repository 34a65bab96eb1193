from django.urls import URLPattern, path

from shouhu.intake import views

app_name = "intake"

urlpatterns: list[URLPattern] = [
    path("export/ledger.xlsx", views.ledger_xlsx, name="export_ledger"),
    path("export/stats.xlsx", views.stats_xlsx, name="export_stats"),
    path("template.xlsx", views.survey_template, name="template"),
]
