"""kombu's filesystem transport, with each file created atomically.

kombu 5.x's filesystem reader moves a message file away without taking the
writer's lock, so it can read a file whose writer has only created it. It
also creates an exchange's table file empty before it locks it. Either JSON
decode error stops the Celery worker. Here each new file is written under a
temporary name that readers ignore and then linked or renamed into place, so
a reader sees either no file or a whole one.
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

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        table = self._exchange_file(exchange)
        if not table.exists():
            self.control_folder.mkdir(exist_ok=True)
            temporary = table.with_name(f"writing-{uuid.uuid4()}.tmp")
            binding = filesystem.exchange_queue_t(
                routing_key or "", pattern or "", queue or ""
            )
            temporary.write_text(dumps([binding]))
            try:
                # link() fails if another process created the table first.
                os.link(temporary, table)
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        # The table exists now, so kombu takes its locked update path, which
        # adds the binding only if another process's table lacks it.
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel
