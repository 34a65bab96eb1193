from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "shouhu.api"
    label = "api"
    verbose_name = "接口"
