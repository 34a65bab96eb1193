from django.urls import URLPattern, path

from shouhu.intake import views

app_name = "intake"

urlpatterns: list[URLPattern] = [
    path("export/ledger.xlsx", views.ledger_xlsx, name="export_ledger"),
    path("export/stats.xlsx", views.stats_xlsx, name="export_stats"),
    path("exports/<int:export_id>/", views.export_status, name="export_status"),
    path("exports/<int:export_id>/download/", views.export_download, name="export_download"),
    path("exports/<int:export_id>/retry/", views.export_retry, name="export_retry"),
    path("template.xlsx", views.survey_template, name="template"),
    path("import/", views.import_page, name="import"),
    path("import/<int:import_id>/errors.xlsx", views.import_errors, name="import_errors"),
    path("import/<int:import_id>/confirm/", views.import_confirm, name="import_confirm"),
    path("imports/", views.import_history, name="imports"),
    path("batches/<uuid:batch>/", views.import_batch, name="import_batch"),
    path("batches/<uuid:batch>/confirm/", views.import_batch_confirm, name="import_batch_confirm"),
    path("imports/<int:import_id>/", views.import_status, name="import_status"),
    path("imports/<int:import_id>/restart/", views.import_restart, name="import_restart"),
    path("imports/<int:import_id>/undo/", views.import_undo_view, name="import_undo"),
]
