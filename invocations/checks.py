"""System checks for settings that would make the engine misbehave."""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ValidationError

from .validators import validate_endpoint_url

DEVELOPMENT_SECRET_KEY = "insecure-fcdash-development-key"


@register()
def check_engine_settings(app_configs, **kwargs):
    problems = []
    if settings.FCDASH_DISPATCH_LOOKAHEAD_S < settings.FCDASH_DISPATCH_INTERVAL_S:
        problems.append(
            Warning(
                f"FCDASH_DISPATCH_LOOKAHEAD_S ({settings.FCDASH_DISPATCH_LOOKAHEAD_S}) "
                f"is shorter than FCDASH_DISPATCH_INTERVAL_S "
                f"({settings.FCDASH_DISPATCH_INTERVAL_S}), so retries found by the "
                "beat job start up to one interval late.",
                hint="Set the lookahead to a few dispatch intervals.",
                id="fcdash.W001",
            )
        )
    share = settings.FCDASH_ALERT_NEAR_QUOTA_SHARE
    if not 0 < share <= 1:
        problems.append(
            Error(
                f"FCDASH_ALERT_NEAR_QUOTA_SHARE {share} is out of range.",
                hint="Use a share above 0 and at most 1, for example 0.8.",
                id="fcdash.E001",
            )
        )
    if settings.FCDASH_ALERT_WEBHOOK_URL:
        try:
            validate_endpoint_url(settings.FCDASH_ALERT_WEBHOOK_URL)
        except ValidationError as error:
            problems.append(
                Error(
                    error.messages[0].replace(
                        "endpoint_url", "FCDASH_ALERT_WEBHOOK_URL"
                    ),
                    id="fcdash.E002",
                )
            )
    engine = settings.DATABASES["default"]["ENGINE"]
    if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY and "sqlite" not in engine:
        problems.append(
            Warning(
                "SECRET_KEY is the development default on a server database.",
                hint="Set SECRET_KEY to a long random value.",
                id="fcdash.W002",
            )
        )
    return problems
