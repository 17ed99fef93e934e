"""A fake EnOS gateway for tests: the ``enos-fake-gateway`` program that the
wheel carries, started on a free loopback port.

    from enos_token.testing import FakeGateway

    with FakeGateway() as fake:                      # demo app by default
        client = enos_token.Client(fake.url, fake.app_key, fake.app_secret, proxy="")

As pytest fixtures, with one line in ``conftest.py`` (see
``enos_token.pytest_plugin``)::

    pytest_plugins = ["enos_token.pytest_plugin"]

The program is found in this package, else through ``ENOS_FAKE_GATEWAY``,
else in a checkout's ``target/``; a missing one raises ``FileNotFoundError``
naming the places tried.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from typing import List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))


def find_fake_gateway() -> str:
    """The path of the ``enos-fake-gateway`` program."""
    checkout = os.path.normpath(os.path.join(_HERE, "..", "..", "..", "target"))
    places = [os.path.join(_HERE, "enos-fake-gateway")]
    if os.environ.get("ENOS_FAKE_GATEWAY"):
        places.append(os.environ["ENOS_FAKE_GATEWAY"])
    places += [os.path.join(checkout, profile, "enos-fake-gateway") for profile in ("debug", "release")]
    for place in places:
        if os.access(place, os.X_OK):
            return place
    raise FileNotFoundError("enos-fake-gateway not found; tried " + ", ".join(places)
                            + " (install the enos-token wheel, or set ENOS_FAKE_GATEWAY)")


class FakeGateway:
    """The fake gateway on a free loopback port, stopped by :meth:`stop` or
    at the end of a ``with`` block. ``url``, ``app_key`` and ``app_secret``
    are what a client needs."""

    def __init__(self, app_key: str = "demo-app-key", app_secret: str = "demo-app-secret",
                 extra_arguments: Optional[List[str]] = None) -> None:
        self.app_key, self.app_secret = app_key, app_secret
        environment = dict(os.environ, ENOS_FAKE_APP_SECRET=app_secret)  # not on the command line
        self.process = subprocess.Popen(
            [find_fake_gateway(), "--port", "0", "--app", app_key, *(extra_arguments or [])],
            stdout=subprocess.PIPE, text=True, env=environment)
        line = self.process.stdout.readline().strip()
        prefix = "enos-fake-gateway listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the fake gateway did not start: {line!r}")
        self.url = line[len(prefix):]

    #: The control endpoints that only read (GET); the others act (POST).
    READS = ("/fake/control/stats", "/fake/control/file-digest", "/fake/control/calls",
             "/fake/control/token-requests")

    def control(self, path: str, body: Optional[dict] = None) -> dict:
        """Calls the fake's control API: ``control("/fake/control/stats")``
        reads (GET), ``control("/fake/control/expire-tokens")`` and
        ``control("/fake/control/fault", {"fault": "drop"})`` act (POST, with
        the body as JSON, or none). ``GET /`` on the fake lists them all."""
        reads = path.split("?")[0] in self.READS
        data = None if reads else json.dumps(body if body is not None else {}).encode()
        request = urllib.request.Request(self.url + path, data=data, method="GET" if reads else "POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> "FakeGateway":
        return self

    def __exit__(self, *_exception) -> None:
        self.stop()
