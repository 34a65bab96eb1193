from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "shouhu.registry"
    label = "registry"
    verbose_name = "儿童台账"
