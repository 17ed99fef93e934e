"""pytest fixtures for programs that use enos-token: one line in your
``conftest.py`` enables them::

    pytest_plugins = ["enos_token.pytest_plugin"]

``enos_fake_gateway`` is a :class:`enos_token.testing.FakeGateway` (the
``enos-fake-gateway`` program the wheel carries, on a free loopback port),
new for each test and stopped after it; ``enos_client`` is a
:class:`enos_token.Client` for it (no proxy), closed after the test::

    def test_reads_assets(enos_client):
        response = enos_client.request("GET", "/asset-service/v2.1/assets?orgId=o1")
        assert response.status == 200

    def test_survives_an_outage(enos_fake_gateway, enos_client):
        enos_fake_gateway.control("/fake/control/outage", {"status": 503, "times": 1})
        assert enos_client.request("GET", "/fake/v1/echo").status == 200
"""

import pytest

import enos_token
from enos_token.testing import FakeGateway


@pytest.fixture
def enos_fake_gateway():
    """The fake gateway for one test (app ``demo-app-key``)."""
    with FakeGateway() as gateway:
        yield gateway


@pytest.fixture
def enos_client(enos_fake_gateway):
    """A client of the test's fake gateway."""
    with enos_token.Client(enos_fake_gateway.url, enos_fake_gateway.app_key,
                           enos_fake_gateway.app_secret, proxy="") as client:
        yield client
