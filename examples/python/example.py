"""Get a token, refresh it, sign an API call, handle a gateway error, move
files both ways, and make many calls at once from asyncio.

Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET (and
ENOS_TOKEN_LIB when libenos_token.so is not on the loader's path).
"""
import asyncio
import os
import tempfile

import enos_token

# snippet:begin python
url = os.environ["ENOS_GATEWAY_URL"]
key, secret = os.environ["ENOS_APP_KEY"], os.environ["ENOS_APP_SECRET"]

with enos_token.Client(url, key, secret) as client:
    token = client.get_token()
    print("token:", token.access_token[:4] + "…", "expires in", token.expire_s, "s")
    refreshed = client.refresh_token(token.access_token)
    print("refreshed: new token" if refreshed.access_token != token.access_token else "refreshed: ?")
    # One call does it all: signed, sent, a refused token renewed (any EnOS API path).
    response = client.request("POST", "/fake/v1/echo?orgId=o1", json={"k": "v"})
    print("request:", response.status, response.json()["msg"])
    # Or only the headers, for a program that keeps its HTTP library.
    headers = client.auth_headers("pageSize=10", b'{"k":"v"}')
    print("headers:", ", ".join(sorted(headers)))

try:
    enos_token.get_access_token(url, key, "not-the-secret")
except enos_token.ServiceError as error:
    print("error:", error.status_name, error.service_status, error.message)
# snippet:end python

# snippet:begin python-files
with enos_token.Client(url, key, secret) as client:
    # A measurement point with its files (multipart; every part carries its Content-Length).
    response = client.request(
        "POST", "/connect-service/v2.1/integration?action=postMeasurepoint&orgId=o1",
        fields={"enos-message": ('{"payload":[]}', "application/json")},
        files={"enos-file": __file__})  # a path: streamed from disk
    print("upload:", response.status, response.json()["data"]["parts"][1]["filename"])
    # A file written to disk as it arrives (constant memory; resumed if the connection breaks).
    target = os.path.join(tempfile.mkdtemp(), "firmware.bin")
    response = client.request(
        "GET", "/connect-service/v2.1/files?action=download&fileUri=enos-connect://fake/3000000.bin",
        output=target)
    print("download:", response.status, os.path.getsize(target), "bytes")
# snippet:end python-files

# snippet:begin python-async
async def many_calls():
    async with enos_token.AsyncClient(url, key, secret) as client:
        # 100 calls in flight; the event loop goes on, no thread per call.
        responses = await asyncio.gather(
            *(client.request("GET", f"/fake/v1/echo?device={n}") for n in range(100)))
        print("async:", len(responses), "calls,", {response.status for response in responses})
        try:  # a cancelled (or timed-out) task cancels its call at once
            await asyncio.wait_for(client.request("GET", "/fake/v1/echo?delayMs=10000"), timeout=0.2)
        except asyncio.TimeoutError:
            print("async: cancelled after 0.2 s")

asyncio.run(many_calls())
# snippet:end python-async
