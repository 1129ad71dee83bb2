from django.apps import AppConfig
from django.db.models.signals import post_migrate


class InvocationsConfig(AppConfig):
    name = "invocations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401 (registers the system checks)
        from .roles import create_role_groups

        post_migrate.connect(create_role_groups, sender=self)
