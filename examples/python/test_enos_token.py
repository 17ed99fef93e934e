"""Tests of the ctypes binding against the real library and the fake gateway.

Standard library only: python3 -m unittest -v. The library and the
enos-fake-gateway program are found as the package finds them (the installed
wheel's copies, ENOS_TOKEN_LIB / ENOS_FAKE_GATEWAY, or a checkout's target/).
"""

import json
import os
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

import enos_token
import enos_token.testing

APP_KEY = "py-app-key"
APP_SECRET = "py-app-secret-5e2a"


class FakeGateway:
    """The enos-fake-gateway binary on a free port."""

    def __init__(self, *extra: str) -> None:
        binary = enos_token.testing.find_fake_gateway()
        self.process = subprocess.Popen(
            [binary, "--port", "0", "--max-seconds", "300", "--app", f"{APP_KEY}:{APP_SECRET}", *extra],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        prefix = "enos-fake-gateway listening on "
        if not line.startswith(prefix):
            raise RuntimeError(f"unexpected first line: {line!r}")
        self.url = line[len(prefix):]

    def control(self, path: str, body: dict = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def setUpModule():
    global FAKE
    os.environ["NO_PROXY"] = "*"
    FAKE = FakeGateway()


def tearDownModule():
    FAKE.stop()


class OneShotTest(unittest.TestCase):
    def test_get_then_refresh(self):
        token = enos_token.get_access_token(FAKE.url, APP_KEY, APP_SECRET)
        self.assertIsInstance(token, enos_token.Token)
        self.assertGreater(len(token.access_token), 0)
        self.assertGreater(token.expire_s, 0)
        refreshed = enos_token.refresh_access_token(FAKE.url, APP_KEY, APP_SECRET, token.access_token)
        self.assertNotEqual(refreshed.access_token, token.access_token)
        self.assertEqual(refreshed.expire_s, 7200)

    def test_wrong_secret_is_a_service_error_with_codes(self):
        with self.assertRaises(enos_token.ServiceError) as caught:
            enos_token.get_access_token(FAKE.url, APP_KEY, "wrong-secret")
        error = caught.exception
        self.assertEqual(error.status, 8)
        self.assertEqual(error.status_name, "ENOS_ERR_SERVICE")
        self.assertEqual(error.service_status, 1003)
        self.assertEqual(error.http_status, 200)
        self.assertTrue(error.message.startswith("gateway status 1003"), error.message)
        self.assertNotIn("wrong-secret", str(error))

    def test_refused_connection(self):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(enos_token.ConnectError) as caught:
            enos_token.get_access_token(f"http://127.0.0.1:{port}", APP_KEY, APP_SECRET)
        self.assertEqual(caught.exception.message, f"connect to 127.0.0.1:{port} refused")

    def test_bad_arguments(self):
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.get_access_token(FAKE.url, "", APP_SECRET)
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.get_access_token("ftp://nowhere", APP_KEY, APP_SECRET)
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.get_access_token(FAKE.url, "key\0with-nul", APP_SECRET)
        with self.assertRaises(TypeError):
            enos_token.get_access_token(FAKE.url, None, APP_SECRET)

    def test_sign_request_matches_an_independent_vector(self):
        # Same vector as tests/signing.rs ("sorted query"), computed by a
        # separate Python implementation of the rule.
        signature = enos_token.sign_request("fk000001abcdef", "k3=v3&k1=v1&k2=v2", b"", 1700000000123,
                                            "test-app-secret-8d1f")
        self.assertEqual(signature, "c56f1cc735b1d7557bf7143bda631e880b3f588a382fb2d2aaadfc98b20e1475")

    def test_a_library_that_is_not_there_is_named(self):
        with self.assertRaises(enos_token.LibraryNotFoundError) as raised:
            enos_token.load_library("/nonexistent/libenos_token.so")
        self.assertIn("/nonexistent/libenos_token.so", str(raised.exception))
        self.assertIn("ENOS_TOKEN_LIB", str(raised.exception))

    def test_the_testing_helper_starts_a_fake(self):
        with enos_token.testing.FakeGateway("helper-key", "helper-secret") as fake:
            token = enos_token.get_access_token(fake.url, fake.app_key, fake.app_secret)
            self.assertEqual(token.expire_s, 7200)
            self.assertEqual(fake.control("/fake/control/stats")["getRequests"], 1)

    def test_version(self):
        self.assertRegex(enos_token.version(), r"^\d+\.\d+\.\d+")


class ClientTest(unittest.TestCase):
    def test_managed_token_is_cached(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="") as client:
            first = client.access_token()
            for _ in range(100):
                self.assertEqual(client.access_token(), first)
            counters = client.counters()
            self.assertEqual(counters["cache_hits"], 100)
            self.assertLessEqual(counters["get_requests"], 1)

    def test_shared_cache_and_background_refresh(self):
        import tempfile
        with tempfile.TemporaryDirectory() as directory:
            with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="", shared_cache=directory,
                                   background_refresh=True) as first, \
                    enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="",
                                      shared_cache=directory) as second:
                token = first.access_token()
                self.assertEqual(second.access_token(), token)
                self.assertEqual(second.counters()["get_requests"], 0, "taken from the shared file")
            os.chmod(directory, 0o777)
            with self.assertRaises(enos_token.InvalidArgumentError):
                enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, shared_cache=directory)

    def test_raw_calls_and_invalidate(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET) as client:
            token = client.get_token()
            refreshed = client.refresh_token(token.access_token)
            self.assertEqual(client.access_token(), refreshed.access_token)
            client.invalidate("not-the-cached-one")
            self.assertEqual(client.access_token(), refreshed.access_token)
            client.invalidate(refreshed.access_token)
            gets = client.counters()["get_requests"]
            client.access_token()
            self.assertEqual(client.counters()["get_requests"], gets + 1)

    def test_auth_headers_pass_the_echo_api(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET) as client:
            body = b'{"assetIds":["a1"]}'
            headers = client.auth_headers("pageSize=10&orgId=o15", body)
            self.assertEqual(sorted(headers), ["apim-accesstoken", "apim-signature", "apim-timestamp"])
            headers["Content-Type"] = "application/json"  # a JSON body is signed
            request = urllib.request.Request(FAKE.url + "/fake/v1/echo?pageSize=10&orgId=o15", data=body,
                                             headers=headers, method="POST")
            with urllib.request.urlopen(request) as answer:
                self.assertEqual(json.load(answer)["msg"], "signature ok")
            tampered = urllib.request.Request(FAKE.url + "/fake/v1/echo?pageSize=11&orgId=o15", data=body,
                                              headers=headers, method="POST")
            with self.assertRaises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(tampered)
            self.assertEqual(caught.exception.code, 401)
            caught.exception.close()

    def test_request_signs_and_sends_an_api_call(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="") as client:
            response = client.request("GET", "/fake/v1/echo?orgId=o1&pageSize=10")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.json()["data"]["query"], "orgId=o1&pageSize=10")
            self.assertIn("Content-Type", response.headers)
            self.assertEqual(response.headers["CONTENT-TYPE"], response.headers["content-type"])
            self.assertIn("signature ok", response.text)
            # json= serialises once; exactly those bytes are signed and sent.
            response = client.request("POST", "/fake/v1/echo", json={"assetIds": ["a1", "a2"], "k": "\u00e9"})
            data = response.json()["data"]
            self.assertEqual(data["body"], '{"assetIds":["a1","a2"],"k":"\u00e9"}')
            self.assertEqual(data["contentType"], "application/json;charset=UTF-8")
            self.assertEqual(client.request("GET", "/no/such/api").status, 404)
            with self.assertRaises(enos_token.InvalidArgumentError):
                client.request("GET", "http://elsewhere.example/steal")
            with self.assertRaises(enos_token.InvalidArgumentError):
                client.request("POST", "/a", body=b"x", json={})
            self.assertEqual(client.counters()["api_calls"], 3)

    def test_a_retired_token_is_renewed_by_request(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="") as client, \
                enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="") as sibling:
            sibling.refresh_token(client.access_token())  # retires the client's token
            self.assertEqual(client.request("GET", "/fake/v1/echo").status, 200)
            self.assertEqual(client.counters()["token_renewals"], 1)

    def test_sixteen_threads_share_one_client(self):
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET) as client:
            results, errors = [], []

            def work():
                try:
                    for _ in range(200):
                        results.append(client.access_token())
                except Exception as error:  # noqa: BLE001
                    errors.append(error)

            threads = [threading.Thread(target=work) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(errors, [])
            self.assertEqual(len(results), 16 * 200)
            self.assertEqual(len(set(results)), 1)
            self.assertLessEqual(client.counters()["get_requests"], 1)

    def test_log_callback(self):
        messages = []
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET,
                               log=lambda level, message: messages.append((level, message))) as client:
            token = client.access_token()
            client.invalidate(token)
        self.assertTrue(any(level == enos_token.LOG_INFO and m.startswith("Get succeeded") for level, m in messages),
                        messages)
        self.assertTrue(all(token not in m and APP_SECRET not in m for _, m in messages), messages)

    def test_a_raising_log_callback_does_not_break_calls(self):
        def explode(level, message):
            raise RuntimeError("boom")
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, log=explode) as client:
            self.assertTrue(client.access_token())

    def test_options_are_checked(self):
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, connect_timeout_ms=0)
        with self.assertRaises(enos_token.InvalidArgumentError) as caught:
            enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, ca_file="/nonexistent.pem")
        self.assertIn("/nonexistent.pem", caught.exception.message)
        with self.assertRaises(enos_token.InvalidArgumentError):
            enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="gopher://x:1")

    def test_timeout(self):
        FAKE.control("/fake/control/fault", {"fault": "delay", "ms": 3000, "times": 1})
        try:
            with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, connect_timeout_ms=200,
                                   total_timeout_ms=300, retries=(0, 0)) as client:
                with self.assertRaises(enos_token.EnosTimeoutError):
                    client.get_token()
        finally:
            FAKE.control("/fake/control/fault", {"fault": "clear"})

    def test_closed_client_raises(self):
        client = enos_token.Client(FAKE.url, APP_KEY, APP_SECRET)
        client.close()
        client.close()  # idempotent
        with self.assertRaises(enos_token.NullArgumentError):
            client.access_token()


MEASUREPOINTS = "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1"


def download_path(size: int) -> str:
    return f"/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/{size}.bin"


def served_digest(size: int) -> str:
    return FAKE.control(f"/fake/control/file-digest?fileUri=enos-connect://fake/{size}.bin")["sha256"]


class FilesTest(unittest.TestCase):
    """Uploads and streamed downloads against the fake's EnOS file APIs."""

    def setUp(self):
        import tempfile
        self.dir = tempfile.TemporaryDirectory()
        self.client = enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="")

    def tearDown(self):
        self.client.close()
        self.dir.cleanup()
        FAKE.control("/fake/control/fault", {"fault": "clear"})

    def path(self, name: str, content: bytes = b"") -> str:
        path = os.path.join(self.dir.name, name)
        with open(path, "wb") as file:
            file.write(content)
        return path

    def test_a_measurement_point_upload_arrives_intact(self):
        import hashlib
        import io
        csv = self.path("readings.csv", b"t,v\n" * 50000)
        photo = bytes(range(256)) * 4000
        reports = []
        response = self.client.request(
            "POST", MEASUREPOINTS,
            fields={"enos-message": ('{"payload":[]}', "application/json")},
            files=[("enos-file", csv), ("enos-file", ("camera.jpg", io.BytesIO(photo), "image/jpeg"))],
            progress=lambda *report: reports.append(report))
        self.assertEqual(response.status, 200, response.text)
        parts = response.json()["data"]["parts"]
        self.assertEqual([p["name"] for p in parts], ["enos-message", "enos-file", "enos-file"])
        self.assertEqual(parts[1]["filename"], "readings.csv")
        self.assertEqual(parts[1]["sha256"], hashlib.sha256(b"t,v\n" * 50000).hexdigest())
        self.assertEqual((parts[2]["filename"], parts[2]["contentType"]), ("camera.jpg", "image/jpeg"))
        self.assertEqual(parts[2]["sha256"], hashlib.sha256(photo).hexdigest())
        sent, send_total = reports[-1][0], reports[-1][1]
        self.assertEqual(sent, send_total)
        self.assertGreater(send_total, len(photo))

    def test_a_signature_over_a_multipart_body_is_refused(self):
        body = (b'--b\r\nContent-Disposition: form-data; name="enos-message"\r\nContent-Length: 2\r\n\r\n{}\r\n'
                b"--b--\r\n")
        headers = self.client.auth_headers("action=postMeasurepoint&orgId=o1", body)  # the old, wrong way
        headers["Content-Type"] = "multipart/form-data; boundary=b"
        request = urllib.request.Request(FAKE.url + MEASUREPOINTS, data=body, headers=headers, method="POST")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        self.assertEqual(caught.exception.code, 401)
        self.assertIn(b"signature mismatch", caught.exception.read())
        caught.exception.close()

    def test_a_50_mib_download_to_a_path_and_to_a_file_object_is_exact(self):
        import hashlib
        import io
        size = 50 * 1024 * 1024
        target = os.path.join(self.dir.name, "out.bin")
        response = self.client.request("GET", download_path(size), output=target)
        self.assertEqual((response.status, response.body), (200, b""))
        with open(target, "rb") as file:
            self.assertEqual(hashlib.sha256(file.read()).hexdigest(), served_digest(size))
        memory = io.BytesIO()  # no fileno(): written through a callback
        self.client.request("GET", download_path(size), output=memory)
        self.assertEqual(hashlib.sha256(memory.getvalue()).hexdigest(), served_digest(size))

    def test_a_download_cut_after_1_mib_completes_through_one_range_request(self):
        import hashlib
        size = 4 * 1024 * 1024 + 5
        FAKE.control("/fake/control/fault", {"fault": "cut-download", "bytes": 1024 * 1024})
        ranges = FAKE.control("/fake/control/stats")["rangeRequests"]
        with open(os.path.join(self.dir.name, "cut.bin"), "wb") as file:
            response = self.client.request("GET", download_path(size), output=file)
        self.assertEqual((response.status, response.attempts), (200, 2))
        with open(os.path.join(self.dir.name, "cut.bin"), "rb") as file:
            self.assertEqual(hashlib.sha256(file.read()).hexdigest(), served_digest(size))
        self.assertEqual(FAKE.control("/fake/control/stats")["rangeRequests"], ranges + 1)

    def test_an_output_that_raises_stops_the_call_with_its_exception_as_cause(self):
        class Full:
            def write(self, data):
                raise OSError(28, "No space left on device")
        with self.assertRaises(enos_token.EnosCancelledError) as caught:
            self.client.request("GET", download_path(100000), output=Full())
        self.assertIsInstance(caught.exception.__cause__, OSError)
        self.assertEqual(self.client.request("GET", "/fake/v1/echo").status, 200)

    def test_an_outage_is_retried_and_the_response_says_so(self):
        FAKE.control("/fake/control/outage", {"status": 503, "times": 2})
        with enos_token.Client(FAKE.url, APP_KEY, APP_SECRET, proxy="", retries=(2, 5)) as client:
            response = client.request("GET", "/fake/v1/echo")
            self.assertEqual((response.status, response.attempts), (200, 3))
            self.assertEqual(client.counters()["api_retries"], 2)
            self.assertIsNone(response.request_id, "the echo API is not an EnOS envelope")
            upload = client.request("POST", MEASUREPOINTS, fields={"enos-message": ("{}", "application/json")})
            self.assertTrue(upload.request_id.startswith("fake-"), upload.request_id)

    def test_bad_headers_missing_files_and_mixed_bodies_are_refused_by_name(self):
        with self.assertRaises(enos_token.InvalidArgumentError) as caught:
            self.client.request("GET", "/fake/v1/echo", headers={"apim-signature": "x"})
        self.assertIn("apim-signature", caught.exception.message)
        with self.assertRaises(enos_token.InvalidArgumentError) as caught:
            self.client.request("GET", "/fake/v1/echo", headers={"X-Split": "a\r\nb"})
        self.assertIn("CR, LF or NUL", caught.exception.message)
        with self.assertRaises(enos_token.InvalidArgumentError) as caught:
            self.client.request("POST", MEASUREPOINTS, files={"enos-file": "/nonexistent/fw.bin"})
        self.assertIn("/nonexistent/fw.bin", caught.exception.message)
        with self.assertRaises(enos_token.InvalidArgumentError):
            self.client.request("POST", MEASUREPOINTS, json={"a": 1}, files={"enos-file": self.path("x")})
        with self.assertRaises(enos_token.InvalidArgumentError) as caught:
            self.client.request("POST", MEASUREPOINTS, files={"enos-file": ("x.bin", iter([b"x"]))})
        self.assertIn("seekable", caught.exception.message)


if __name__ == "__main__":
    unittest.main()
