"""The Celery app: `celery -A fcdash worker --beat` runs a worker with beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fcdash.settings")

app = Celery("fcdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def schedule_dispatcher(sender, **kwargs):
    from django.conf import settings

    sender.add_periodic_task(
        settings.FCDASH_DISPATCH_INTERVAL_S,
        sender.signature("invocations.tasks.dispatch_due_retries"),
        name="dispatch due retries",
        # A tick that waited longer than one interval is stale: the next
        # tick does the same work.
        expires=settings.FCDASH_DISPATCH_INTERVAL_S,
    )
