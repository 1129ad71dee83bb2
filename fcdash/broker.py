"""kombu's filesystem transport, with each message written atomically.

kombu 5.x's filesystem reader moves a message file away without taking the
writer's lock, so it can read a file whose writer has only created it. The
JSON decode error then stops the Celery worker. Here each message is written
under a temporary name that the reader ignores and renamed into place, so a
reader sees either no file or the whole message.
"""

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # The reader orders files by name and takes those ending in
        # ".<queue>.msg"; kombu's own names start with a millisecond clock.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # No ".msg" suffix after the first dot, so readers skip it.
        temporary = os.path.join(self.data_folder_out, f"writing-{uuid.uuid4()}.tmp")
        try:
            with open(temporary, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(temporary, final)
        except OSError as error:
            raise filesystem.ChannelError(
                f"Cannot add file {final!r} to directory"
            ) from error


class Transport(filesystem.Transport):
    Channel = Channel
