#!/usr/bin/env python3
"""Prints API latency figures against a running Kettle (a benchmark, not a test).

    KETTLE_LISTEN=127.0.0.1:18081 KETTLE_DATA_DIR=$(mktemp -d) target/release/kettle serve &
    python3 tests/bench/api_latency.py http://127.0.0.1:18081

Registers a member, then times one keep-alive connection sending `{ viewer { … } }`
with a bearer session token, and `signIn` (one argon2id verification each).
"""
import http.client
import json
import sys
import time
import urllib.parse
import uuid

base = urllib.parse.urlparse(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18081")
conn = http.client.HTTPConnection(base.hostname, base.port)
email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
password = "kettle whistles over marmalade"


def post(body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request("POST", "/graphql", body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    payload = response.read()
    assert response.status == 200, payload
    return json.loads(payload)


register = "mutation($i: RegisterInput!) { register(input: $i) { token } }"
token = post({"query": register, "variables": {"i": {"email": email, "password": password, "displayName": "Bench"}}})[
    "data"]["register"]["token"]
sign_in = "mutation($i: SignInInput!) { signIn(input: $i) { token } }"
cases = [
    ("viewer query (bearer session)", {"query": "{ viewer { id displayName email } }"}, token, 2000),
    ("signIn (argon2id verify)", {"query": sign_in, "variables": {"i": {"email": email, "password": password}}}, None, 50),
]
for name, body, auth, n in cases:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        post(body, auth)
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"{name}: n={n} p50={times[n // 2] * 1000:.2f} ms p99={times[int(n * 0.99)] * 1000:.2f} ms")
