from django.core.checks import run_checks


def check_ids():
    return {message.id for message in run_checks()}


def test_default_settings_pass():
    assert not {i for i in check_ids() if i.startswith("fcdash")}


def test_bad_near_quota_share(settings):
    settings.FCDASH_ALERT_NEAR_QUOTA_SHARE = 1.5
    assert "fcdash.E001" in check_ids()


def test_metadata_webhook_rejected(settings):
    settings.FCDASH_ALERT_WEBHOOK_URL = "http://169.254.169.254/hook"
    assert "fcdash.E002" in check_ids()


def test_short_lookahead_warns(settings):
    settings.FCDASH_DISPATCH_LOOKAHEAD_S = 0.1
    assert "fcdash.W001" in check_ids()


def test_development_key_on_postgres_warns(settings):
    settings.SECRET_KEY = "insecure-fcdash-development-key"
    assert "fcdash.W002" in check_ids()
