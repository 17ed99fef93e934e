"""AsyncClient against the real library and the fake gateway: hundreds of
calls gathered without blocking the event loop, task cancellation, close().

Standard library only: python3 -m unittest -v.
"""

import asyncio
import io
import os
import time
import unittest

import enos_token
from test_enos_token import APP_KEY, APP_SECRET, FakeGateway

ECHO_100_MS = "/fake/v1/echo?delayMs=100"
ECHO_10_S = "/fake/v1/echo?delayMs=10000"
MEASUREPOINTS = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1"


def setUpModule():
    global FAKE
    os.environ["NO_PROXY"] = "*"
    FAKE = FakeGateway()


def tearDownModule():
    FAKE.stop()


async def lag_p99_while(work) -> float:
    """Runs ``work`` while a 1 ms sleeper measures the loop's lag; its p99 in ms."""
    lags = []
    running = True

    async def sleeper():
        while running:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - before) * 1000 - 1)
    measuring = asyncio.create_task(sleeper())
    try:
        await work()
    finally:
        running = False
        await measuring
    lags.sort()
    return lags[int(len(lags) * 0.99)]


class AsyncClientTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.client = enos_token.AsyncClient(FAKE.url, APP_KEY, APP_SECRET, proxy="")
        await self.client.access_token()

    async def asyncTearDown(self):
        self.client.close()

    async def test_two_hundred_gathered_calls_finish_within_a_second_without_blocking_the_loop(self):
        took = 0.0

        async def calls():
            nonlocal took
            started = time.perf_counter()
            responses = await asyncio.gather(*(self.client.request("GET", ECHO_100_MS) for _ in range(200)))
            took = time.perf_counter() - started
            self.assertTrue(all(response.status == 200 for response in responses))
        p99 = await lag_p99_while(calls)
        self.assertLessEqual(took, 1.0, f"200 calls took {took * 1000:.0f} ms")
        self.assertLessEqual(p99, 10.0, f"event-loop lag p99 {p99:.1f} ms")
        self.assertEqual(self.client.counters()["api_calls"], 200)

    async def test_the_same_arguments_and_response_as_the_blocking_client(self):
        response = await self.client.request("POST", "/fake/v1/echo?orgId=o1", json={"k": "v"})
        self.assertIsInstance(response, enos_token.Response)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json()["data"]["body"], '{"k":"v"}')
        self.assertEqual(response.headers["Content-Type"], "application/json;charset=UTF-8")
        self.assertEqual((await self.client.request("GET", "/no/such/api")).status, 404)
        reports = []
        photo = bytes(range(256)) * 2000
        upload = await self.client.request(
            "POST", MEASUREPOINTS, fields={"enos-message": ('{"payload":[]}', "application/json")},
            files={"enos-file": ("camera.jpg", io.BytesIO(photo), "image/jpeg")},
            progress=lambda *report: reports.append(report))
        self.assertEqual(upload.status, 200, upload.text)
        self.assertEqual(upload.json()["data"]["parts"][1]["filename"], "camera.jpg")
        self.assertEqual(reports[-1][0], reports[-1][1])
        sink = io.BytesIO()
        download = await self.client.request(
            "GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/300000.bin",
            output=sink)
        self.assertEqual((download.status, len(download.body), len(sink.getvalue())), (200, 0, 300000))

    async def test_failures_raise_the_blocking_clients_errors(self):
        with self.assertRaises(enos_token.InvalidArgumentError) as refused:
            await self.client.request("GET", "/fake/v1/echo", headers={"apim-signature": "x"})
        self.assertIn("apim-signature", str(refused.exception))
        with self.assertRaises(enos_token.EnosTimeoutError):
            await self.client.request("GET", ECHO_10_S, timeout=0.2)

        class Full:
            def write(self, _data):
                raise OSError(28, "No space left on device")
        with self.assertRaises(enos_token.EnosError) as stopped:
            await self.client.request(
                "GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/300000.bin",
                output=Full())
        self.assertIsInstance(stopped.exception.__cause__, OSError)

    async def test_a_cancelled_task_raises_cancelled_error_within_50_ms_and_the_client_goes_on(self):
        task = asyncio.create_task(self.client.request("GET", ECHO_10_S))
        await asyncio.sleep(0.2)  # on the wire
        cancelled = time.perf_counter()
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertLessEqual(time.perf_counter() - cancelled, 0.05)
        self.assertEqual((await self.client.request("GET", "/fake/v1/echo")).status, 200)

    async def test_a_cancelled_call_with_callbacks_lets_go_of_them_once_the_library_is_done(self):
        progress_calls = []
        sink = io.BytesIO()
        task = asyncio.create_task(self.client.request(
            "GET", ECHO_10_S, output=sink, progress=lambda *report: progress_calls.append(report)))
        await asyncio.sleep(0.2)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        deadline = time.monotonic() + 2
        while enos_token._calls_in_flight._watched and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.assertEqual(enos_token._calls_in_flight._watched, {}, "released once the worker was done")
        self.assertEqual((await self.client.request("GET", "/fake/v1/echo")).status, 200)

    async def test_close_cancels_the_calls_in_flight(self):
        client = enos_token.AsyncClient(FAKE.url, APP_KEY, APP_SECRET, proxy="", max_concurrent_calls=2)
        await client.access_token()
        tasks = [asyncio.create_task(client.request("GET", ECHO_10_S)) for _ in range(5)]
        await asyncio.sleep(0.1)
        closed = time.perf_counter()
        client.close()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        self.assertLess(time.perf_counter() - closed, 1.0)
        self.assertTrue(all(isinstance(outcome, enos_token.EnosCancelledError) for outcome in outcomes), outcomes)
        with self.assertRaises(enos_token.NullArgumentError):
            await client.request("GET", "/fake/v1/echo")
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.AsyncClient(FAKE.url, APP_KEY, APP_SECRET, max_concurrent_calls=0)

    async def test_token_calls_and_context_manager(self):
        async with enos_token.AsyncClient(FAKE.url, APP_KEY, APP_SECRET, proxy="") as client:
            token = await client.get_token()
            refreshed = await client.refresh_token(token.access_token)
            self.assertEqual(await client.access_token(), refreshed.access_token)
            headers = await client.auth_headers("a=1", b"{}")
            self.assertEqual(headers["apim-accesstoken"], refreshed.access_token)
            fetched = client.counters()["get_requests"]
            client.invalidate(refreshed.access_token)
            await client.access_token()
            self.assertEqual(client.counters()["get_requests"], fetched + 1)


if __name__ == "__main__":
    unittest.main()
