"""The embedded broker under concurrent writers and a reader."""

import threading

from kombu import Connection, Exchange, Queue

MESSAGES_PER_WRITER = 300
WRITERS = 4


def exchange_messages(tmp_path, transport: str) -> list[int]:
    """Send messages from several threads while one thread reads them."""
    options = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
        "control_folder": str(tmp_path / "control"),
        "processed_folder": str(tmp_path / "processed"),
        "store_processed": False,
        "polling_interval": 0.001,
    }
    (tmp_path / "control").mkdir()
    (tmp_path / "processed").mkdir()
    queue = Queue("race", Exchange("race"), routing_key="race")
    received: list[int] = []
    done = threading.Event()

    def write(offset: int) -> None:
        with Connection(
            "filesystem://", transport=transport, transport_options=options
        ) as connection:
            producer = connection.Producer()
            for number in range(MESSAGES_PER_WRITER):
                producer.publish(
                    {"number": offset + number, "padding": "x" * 20_000},
                    exchange=queue.exchange,
                    routing_key="race",
                    declare=[queue],
                )

    def read() -> None:
        with Connection(
            "filesystem://", transport=transport, transport_options=options
        ) as connection:
            simple = connection.SimpleQueue(queue)
            while not done.is_set() or len(received) < WRITERS * MESSAGES_PER_WRITER:
                try:
                    message = simple.get(timeout=1)
                except simple.Empty:
                    if done.is_set():
                        break
                    continue
                received.append(message.payload["number"])
                message.ack()

    # Declare the queue once first, as a worker does when it starts. kombu
    # records a binding in memory before it writes the exchange table, so
    # threads of one process that declare at once can publish before the
    # table names the queue.
    with Connection(
        "filesystem://", transport=transport, transport_options=options
    ) as connection:
        queue(connection.default_channel).declare()

    reader = threading.Thread(target=read)
    reader.start()
    writers = [
        threading.Thread(target=write, args=(index * MESSAGES_PER_WRITER,))
        for index in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    done.set()
    reader.join(timeout=60)
    return received


def test_embedded_broker_delivers_every_message(tmp_path):
    received = exchange_messages(tmp_path, "fcdash.broker:Transport")
    assert sorted(received) == list(range(WRITERS * MESSAGES_PER_WRITER))
