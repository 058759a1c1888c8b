"""A minimal custom Lambda runtime for test/integration/lambda.sh: asks the
Runtime API at $AWS_LAMBDA_RUNTIME_API for events and runs the handler,
which burns HANDLER_CPU_MS of CPU (a known amount of profiled work per
invocation), then posts the response. Runs until the stand-in kills it,
as Lambda ends an execution environment."""
import http.client
import json
import os
import time

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
cpu_ms = int(os.environ.get("HANDLER_CPU_MS", "500"))


def handler_busy_loop(event):
    end = time.process_time() + cpu_ms / 1000.0
    n = 0
    while time.process_time() < end:
        n += sum(i * i for i in range(200))
    return {"invocation": event.get("invocation"), "work": n % 1000}


host, port = api.split(":")
while True:
    conn = http.client.HTTPConnection(host, int(port), timeout=None)
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    event = json.loads(r.read() or b"{}")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    result = handler_busy_loop(event)
    conn.request("POST", "/2018-06-01/runtime/invocation/%s/response" % rid,
                 body=json.dumps(result).encode(),
                 headers={"Content-Type": "application/json"})
    conn.getresponse().read()
    conn.close()
