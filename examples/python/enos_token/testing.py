"""A fake EnOS gateway for tests: the ``enos-fake-gateway`` program that the
wheel carries, started on a free loopback port.

    from enos_token.testing import FakeGateway

    with FakeGateway() as fake:                      # demo app by default
        client = enos_token.Client(fake.url, fake.app_key, fake.app_secret, proxy="")

As a pytest fixture::

    @pytest.fixture
    def fake():
        with FakeGateway() as gateway:
            yield gateway

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

    def control(self, path: str, body: Optional[dict] = None) -> dict:
        """Calls the fake's control API, e.g. ``control("/fake/control/stats")``."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
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
