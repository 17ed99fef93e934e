"""Get a token, refresh it, sign an API call, and handle a gateway error.

Environment: ENOS_GATEWAY_URL, ENOS_APP_KEY, ENOS_APP_SECRET (and
ENOS_TOKEN_LIB when libenos_token.so is not on the loader's path).
"""
import os

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
