"""A real SMTP server for confab's tests (aiosmtpd).

Usage: smtp_sink.py PORT DIR. Every message it accepts is written to DIR as one JSON file
{"mail_from", "rcpt_tos", "data"} (written to a temporary name, then renamed, so a reader never
sees half a file). Prints "ready" once it accepts connections; runs until killed.
"""
import json
import os
import sys
import threading
import time
import uuid

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, directory):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", errors="replace"),
        }
        name = f"{time.time_ns()}-{uuid.uuid4().hex}"
        temporary = os.path.join(self.directory, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.rename(temporary, os.path.join(self.directory, f"{name}.json"))
        return "250 Message accepted for delivery"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Recorder(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
