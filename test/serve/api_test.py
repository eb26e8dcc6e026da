"""diffclip serve's JSON API over real HTTP on loopback (test/scripts/test_serve.sh runs it).

usage: api_test.py DIFFCLIP BASE_MODEL FINETUNED_DIR WORK_DIR CLIP VOCAB

FINETUNED_DIR holds b.pt (a full state dict) and angry.delta (made by `diffclip finetune`),
evil.pt (a link to /etc/passwd) and outside.pt (a link to a model outside the directory).
Starts the server on an ephemeral port (--port 0), checks good and bad requests, traversal,
oversize bodies and images, concurrent requests, the bounded queue, cancellation by
disconnecting clients, a fine-tuning job and a cancelled one, then SIGTERM. Every wait is for
a condition, bounded by a deadline; none is a sleep for timing. Prints PASS/FAIL lines and
the closing "N passed, N failed, N skipped" line that test/run.sh reads.
"""
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib

DIFFCLIP, BASE, DIR, WORK, CLIP, VOCAB = sys.argv[1:7]
DEADLINE = 120           # seconds any awaited condition may take
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS serve/" + name)
    else:
        failed += 1
        print("FAIL serve/%s: %s" % (name, detail))


def png_bytes(width, height, seed):
    """An RGB PNG of pseudo-random pixels (no imaging library needed)."""
    rows, x = b"", seed * 2654435761 % 2**32
    for _ in range(height):
        row = bytearray([0])
        for _ in range(width * 3):
            x = (1103515245 * x + 12345) % 2**31
            row.append(x >> 23)
        rows += bytes(row)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", data[16:24])


def multipart(fields):
    """fields: list of (name, value) with value str, or (filename, bytes) for a file."""
    boundary = uuid.uuid4().hex
    out = b""
    for name, value in fields:
        out += b"--" + boundary.encode() + b"\r\n"
        if isinstance(value, tuple):
            out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    "Content-Type: application/octet-stream\r\n\r\n" % (name, value[0])).encode()
            out += value[1]
        else:
            out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode()
            out += value.encode()
        out += b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + boundary, out


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def error(self):
        j = self.json()
        return isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"] != ""


def request(method, path, body=None, headers=None, timeout=DEADLINE):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def post(path, fields, headers=None):
    ctype, body = multipart(fields)
    h = {"Content-Type": ctype}
    h.update(headers or {})
    return request("POST", path, body, h)


def read_reply(s):
    """An HTTP/1.1 response with a Content-Length from socket s."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(l.lower().split(": ", 1) for l in lines[1:] if ": " in l)
    while len(body) < int(headers.get("content-length", 0)):
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return Reply(int(lines[0].split()[1]) if lines[0] else 0, headers, body)


def expect_continue(path, fields):
    """A POST as curl sends a large body: the headers with "Expect: 100-continue" first, and
    the body only after "100 Continue" (a server refusing it answers at once instead)."""
    ctype, body = multipart(fields)
    s = socket.create_connection(("127.0.0.1", PORT), timeout=DEADLINE)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (path, PORT, ctype, len(body))).encode())
        r = read_reply(s)
        if r.status == 100:
            s.sendall(body)
            r = read_reply(s)
        return r
    finally:
        s.close()


def status():
    return request("GET", "/api/status").json()


def wait_for(what, condition):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)     # a polling interval; the wait is for the condition
    raise TimeoutError(what)


def edit_fields(image, models="", weights="", t0="300", inv="8", gen="4", **more):
    fields = [("image", ("photo.png", image)), ("models", models), ("weights", weights),
              ("t0", t0), ("inv_steps", inv), ("gen_steps", gen)]
    return fields + [(k, v) for k, v in more.items()]


def cli_edit(image_path, specs, out, transition_count=None):
    cmd = [DIFFCLIP, "transition" if transition_count else "edit", "--model", BASE]
    for s in specs:
        cmd += ["--finetuned", s]
    cmd += ["--image", image_path, "--t0", "300", "--inv-steps", "8", "--gen-steps", "4",
            "-o", out, "--threads", "1"]
    if transition_count:
        cmd += ["--count", str(transition_count)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=DEADLINE)
    with open(out, "rb") as f:
        return f.read()


def start_server():
    args = [DIFFCLIP, "serve", "--model", BASE, "--finetuned-dir", DIR, "--port", "0",
            "--queue", "2", "--max-upload", "1", "--max-image-side", "256", "--clip", CLIP,
            "--vocab", VOCAB, "--threads", "1"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(WORK, "server.log"), "w"))
    ready, _, _ = select.select([p.stdout], [], [], DEADLINE)
    line = p.stdout.readline().decode() if ready else ""
    return p, line


def run_cli(*args):
    p = subprocess.run([DIFFCLIP, "serve"] + list(args), capture_output=True, timeout=DEADLINE)
    return p.returncode, p.stderr.decode()


rc, err = run_cli("--model", BASE)
check("usage_needs_dir", rc == 2 and "--finetuned-dir is required" in err, (rc, err))
rc, err = run_cli("--model", BASE, "--finetuned-dir", DIR, "--port", "70000")
check("usage_port_range", rc == 2 and "--port" in err, (rc, err))
rc, err = run_cli("--model", BASE, "--finetuned-dir", DIR, "--host", "example.com")
check("usage_host_numeric", rc == 1 and "numeric" in err, (rc, err))
rc, err = run_cli("--model", BASE, "--finetuned-dir", os.path.join(WORK, "missing"), "--port", "0")
check("missing_dir_fails", rc == 1 and "missing" in err, (rc, err))
rc, err = run_cli("--model", os.path.join(WORK, "missing.pt"), "--finetuned-dir", DIR, "--port", "0")
check("missing_model_fails", rc == 1 and "missing.pt" in err, (rc, err))

server, line = start_server()
check("listens_on_loopback", line.startswith("listening on http://127.0.0.1:"), repr(line))
if not line.startswith("listening on"):
    server.kill()
    print("%d passed, %d failed, 0 skipped" % (passed, failed + 1))
    sys.exit(1)
PORT = int(line.strip().rstrip("/").rsplit(":", 1)[1])
rc, err = run_cli("--model", BASE, "--finetuned-dir", DIR, "--port", str(PORT))
check("port_in_use_fails", rc == 1 and "cannot listen" in err, (rc, err))

try:
    photo = png_bytes(40, 30, 1)
    photo_path = os.path.join(WORK, "photo.png")
    with open(photo_path, "wb") as f:
        f.write(photo)

    # ---- listing and the page ----
    r = request("GET", "/api/models")
    names = [m["name"] for m in (r.json() or {}).get("models", [])]
    check("models_list", r.status == 200 and names == ["angry.delta", "b.pt"], "%s %s" % (r.status, names))
    check("models_base", r.status == 200 and r.json()["base"]["image_size"] == 32, r.body[:200])
    r = request("GET", "/")
    check("page", r.status == 200 and r.headers.get("content-type", "").startswith("text/html")
          and b"<title>diffclip</title>" in r.body, r.status)
    check("page_policy", "default-src 'none'" in r.headers.get("content-security-policy", ""), r.headers)

    # ---- editing: the CLI's result, then a new mix from the cached latent ----
    before = status()
    r = post("/api/edit", edit_fields(photo, "b.pt,angry.delta", "0.5,0.25"))
    # The CLI resolves fine-tuned models by path.
    expected = cli_edit(photo_path, [os.path.join(DIR, "b.pt") + ":0.5",
                                     os.path.join(DIR, "angry.delta") + ":0.25"],
                        os.path.join(WORK, "cli.png"))
    check("edit_png", r.status == 200 and r.headers.get("content-type") == "image/png"
          and png_size(r.body) == (32, 32), "%s %s" % (r.status, r.body[:200]))
    check("edit_equals_cli", r.body == expected, "the server's edit differs from diffclip edit's")
    check("edit_inverted", r.headers.get("x-diffclip-latent") == "inverted", r.headers)
    first = r.body
    r = post("/api/edit", edit_fields(photo, "b.pt,angry.delta", "0.9,0.1"))
    after = status()
    check("slider_move_uses_cached_latent", r.status == 200 and r.headers.get("x-diffclip-latent") == "cached"
          and after["inversions"] == before["inversions"] + 1, "%s %s" % (r.headers, after))
    check("slider_move_changes_image", r.status == 200 and r.body != first)

    r = post("/api/transition", edit_fields(photo, "b.pt", "", count="3"))
    expected = cli_edit(photo_path, [os.path.join(DIR, "b.pt")], os.path.join(WORK, "strip.png"), 3)
    check("transition_strip", r.status == 200 and png_size(r.body) == (96, 32), "%s %s" % (r.status, r.body[:200]))
    check("transition_equals_cli", r.body == expected)

    # ---- bad requests: each a 4xx with a JSON error ----
    def bad(name, want, reply):
        check("bad_" + name, reply.status == want and reply.error(),
              "got %s %s, wanted %s" % (reply.status, reply.body[:200], want))

    bad("traversal_dotdot", 400, post("/api/edit", edit_fields(photo, "../b.pt")))
    bad("traversal_absolute", 400, post("/api/edit", edit_fields(photo, "/etc/passwd")))
    bad("traversal_link_out", 404, post("/api/edit", edit_fields(photo, "evil.pt")))
    bad("link_to_model_outside", 404, post("/api/edit", edit_fields(photo, "outside.pt")))
    bad("unknown_model", 404, post("/api/edit", edit_fields(photo, "nope.pt")))
    bad("hidden_name", 400, post("/api/edit", edit_fields(photo, ".b.pt")))
    bad("weights_count", 400, post("/api/edit", edit_fields(photo, "b.pt", "0.5,0.5")))
    bad("weights_sum", 400, post("/api/edit", edit_fields(photo, "b.pt,angry.delta", "0.8,0.7")))
    bad("weights_text", 400, post("/api/edit", edit_fields(photo, "b.pt", "lots")))
    bad("weights_negative", 400, post("/api/edit", edit_fields(photo, "b.pt", "-0.5")))
    bad("t0_zero", 400, post("/api/edit", edit_fields(photo, "b.pt", t0="0")))
    bad("t0_text", 400, post("/api/edit", edit_fields(photo, "b.pt", t0="soon")))
    bad("steps_huge", 400, post("/api/edit", edit_fields(photo, "b.pt", gen="100000")))
    bad("count_one", 400, post("/api/transition", edit_fields(photo, "b.pt", count="1")))
    bad("no_image", 400, post("/api/edit", [("models", "b.pt")]))
    bad("not_an_image", 400, post("/api/edit", edit_fields(b"hello, world" * 10, "b.pt")))
    bad("truncated_png", 400, post("/api/edit", edit_fields(photo[:60], "b.pt")))
    bad("image_too_wide", 413, post("/api/edit", edit_fields(png_bytes(300, 8, 2), "b.pt")))
    big = b"\x89PNG" + os.urandom(1100 * 1024)
    bad("oversize_body", 413, expect_continue("/api/edit", edit_fields(big, "b.pt")))

    # A chunked body gives no length first: refused once over the bound.
    ctype, body = multipart(edit_fields(big, "b.pt"))
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=DEADLINE)
    conn.request("POST", "/api/edit", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                 headers={"Content-Type": ctype}, encode_chunked=True)
    cr = conn.getresponse()
    bad("oversize_chunked", 413, Reply(cr.status, {}, cr.read()))
    conn.close()

    bad("json_body", 415, request("POST", "/api/edit", b'{"image": 1}', {"Content-Type": "application/json"}))
    # The photo has no face: aligned as published, it is used as given.
    r = post("/api/edit", edit_fields(photo, "b.pt", align="1"))
    check("align_without_face", r.status == 200 and r.headers.get("x-diffclip-align") == "no-face"
          and r.body == post("/api/edit", edit_fields(photo, "b.pt")).body,
          "%s %s %s" % (r.status, r.headers, r.body[:200]))
    bad("align_value", 400, post("/api/edit", edit_fields(photo, "b.pt", align="yes")))
    bad("unknown_route", 404, request("GET", "/api/nothing"))
    bad("wrong_method", 405, request("PUT", "/api/edit", b"", {}))
    bad("job_unknown", 404, request("GET", "/api/jobs/999"))
    bad("job_not_a_number", 404, request("DELETE", "/api/jobs/..%2f1"))
    bad("file_traversal", 400, request("GET", "/api/files/..%2f..%2fetc%2fpasswd"))
    bad("file_not_png", 400, request("GET", "/api/files/b.pt"))
    bad("file_missing", 404, request("GET", "/api/files/none.png"))
    bad("foreign_origin", 403, post("/api/edit", edit_fields(photo, "b.pt"),
                                    {"Origin": "http://evil.example"}))
    bad("rebinding_host", 403, request("GET", "/api/models", None, {"Host": "evil.example:%d" % PORT}))
    r = request("GET", "/api/models", None, {"Host": "localhost:%d" % PORT})
    check("localhost_host_allowed", r.status == 200, r.status)
    r = request("GET", "/api/models", b"ignored", {"Content-Length": "7"})
    check("get_with_body", r.status == 200, r.status)
    bad("method_prefix", 405, request("ET", "/api/jobs/1"))
    garbage = b"--x\r\nthis is not\r\n\r\na multipart body" + os.urandom(200)
    r = request("POST", "/api/edit", garbage, {"Content-Type": "multipart/form-data; boundary=x"})
    check("bad_garbled_multipart", 400 <= r.status < 500 and r.error(), "%s %s" % (r.status, r.body[:200]))
    bad("finetune_no_trg", 400, post("/api/finetune", [("images", ("a.png", photo)), ("src", "face"),
                                                       ("name", "x")]))
    bad("finetune_bad_name", 400, post("/api/finetune", [("images", ("a.png", photo)), ("src", "face"),
                                                         ("trg", "angry face"), ("name", "../x")]))
    bad("finetune_exists", 409, post("/api/finetune", [("images", ("a.png", photo)), ("src", "face"),
                                                       ("trg", "angry face"), ("name", "angry")]))
    bad("finetune_no_images", 400, post("/api/finetune", [("src", "face"), ("trg", "angry face"),
                                                          ("name", "y")]))
    r = request("GET", "/api/models")
    check("still_serving_after_bad_requests", r.status == 200, r.status)

    # ---- concurrent requests: one runs at a time, two may wait (--queue 2) ----
    images = [png_bytes(36, 36, 10 + i) for i in range(3)]
    serial = [post("/api/edit", edit_fields(im, "b.pt", "0.6")).body for im in images]
    results = [None] * 3

    def worker(i):
        results[i] = post("/api/edit", edit_fields(images[i], "b.pt", "0.4"))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    check("concurrent_all_served", all(r is not None and r.status == 200 and png_size(r.body) == (32, 32)
                                       for r in results), [r and r.status for r in results])
    check("concurrent_distinct_results", all(r is not None and r.body != s for r, s in zip(results, serial)))
    check("concurrent_same_as_serial", all(r is not None and r.body == post("/api/edit", edit_fields(
        images[i], "b.pt", "0.4")).body for i, r in enumerate(results)))

    # ---- the bounded queue and clients that leave ----
    def long_request(seed):
        """A raw connection posting an edit of ~2000 model calls; returns its socket."""
        ctype, body = multipart(edit_fields(png_bytes(32, 32, seed), "b.pt", "0.5", t0="999",
                                            inv="1000", gen="1000"))
        s = socket.create_connection(("127.0.0.1", PORT), timeout=DEADLINE)
        s.sendall(("POST /api/edit HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
                   "Content-Length: %d\r\n\r\n" % (PORT, ctype, len(body))).encode() + body)
        return s

    cancelled_before = status()["cancelled"]
    running = long_request(100)
    wait_for("a busy server", lambda: status()["busy"])
    queued = [long_request(101)]
    wait_for("one queued request", lambda: status()["queued"] == 1)
    queued.append(long_request(102))
    wait_for("two queued requests", lambda: status()["queued"] == 2)
    r = post("/api/edit", edit_fields(photo, "b.pt"))
    check("queue_full_503", r.status == 503 and r.error(), "%s %s" % (r.status, r.body[:200]))
    for s in queued:
        s.close()
    try:
        wait_for("the queued clients' departure noticed", lambda: status()["queued"] == 0)
        check("queued_client_leaving_cancels", status()["busy"])
    except TimeoutError as e:
        check("queued_client_leaving_cancels", False, str(e))
    running.close()
    try:
        st = wait_for("the running request cancelled",
                      lambda: (lambda s: s if not s["busy"] else None)(status()))
        check("disconnect_cancels_work", st["cancelled"] == cancelled_before + 3, st)
    except TimeoutError as e:
        check("disconnect_cancels_work", False, str(e))
    r = post("/api/edit", edit_fields(photo, "b.pt"))
    check("serves_after_cancellations", r.status == 200, r.status)

    # ---- fine-tuning jobs ----
    job_fields = [("images", ("a.png", photo)), ("images", ("b.png", png_bytes(32, 32, 5))),
                  ("src", "face"), ("trg", "sad face"), ("name", "sad"), ("epochs", "1"),
                  ("t0", "300"), ("inv_steps", "8"), ("train_steps", "2"), ("lr", "0.001")]
    r = post("/api/finetune", job_fields)
    job = r.json() or {}
    check("finetune_started", r.status == 202 and job.get("id") and job.get("model") == "sad.delta",
          "%s %s" % (r.status, r.body[:300]))
    try:
        final = wait_for("the job's end", lambda: (lambda j: j if j.get("done") else None)(
            request("GET", "/api/jobs/%s" % job.get("id")).json() or {}))
        check("finetune_done", final["state"] == "done" and final["epoch"] == 1
              and final["losses"]["total"] > 0
              and final["grid"] == "/api/files/sad.epoch1.test.png", final)
        # the grid of the job's 2 training images: rows of original | reconstruction | edit
        r = request("GET", final["grid"] or "/")
        check("finetune_grid_served", r.status == 200 and png_size(r.body) == (3 * 32 + 4, 2 * 32 + 2),
              r.status)
    except TimeoutError as e:
        check("finetune_done", False, str(e))
    names = [m["name"] for m in request("GET", "/api/models").json()["models"]]
    check("finetuned_model_listed", "sad.delta" in names, names)
    r = post("/api/edit", edit_fields(photo, "sad.delta", "1"))
    check("edit_with_new_model", r.status == 200 and png_size(r.body) == (32, 32), r.status)

    long_fields = [f for f in job_fields if f[0] not in ("name", "epochs")] + \
        [("name", "long"), ("epochs", "1000")]
    r = post("/api/finetune", long_fields)
    job = r.json() or {}
    jid = job.get("id")
    check("long_job_started", r.status == 202, r.body[:300])
    bad("second_job_busy", 503, post("/api/finetune", [f for f in job_fields if f[0] != "name"]
                                              + [("name", "other")]))
    try:
        wait_for("training", lambda: request("GET", "/api/jobs/%s" % jid).json().get("epoch", 0) >= 1)
        # The latest per-epoch test grid (NAME.epochE.test.png) fine-tuning wrote is reported.
        j = request("GET", "/api/jobs/%s" % jid).json()
        check("job_reports_grid",
              re.fullmatch(r"/api/files/long\.epoch[0-9]+\.test\.png", j["grid"] or ""), j)
        r = request("GET", j["grid"] or "/")
        check("job_grid_served", r.status == 200 and png_size(r.body) == (3 * 32 + 4, 2 * 32 + 2),
              r.status)
        check("job_progress_fields", j["state"] == "training" and j["epochs"] == 1000
              and "eta_seconds" in j and "losses" in j, j)
        r = request("DELETE", "/api/jobs/%s" % jid)
        check("job_cancel_accepted", r.status == 202, r.status)
        final = wait_for("the job's cancellation", lambda: (lambda j: j if j.get("done") else None)(
            request("GET", "/api/jobs/%s" % jid).json()))
        check("job_cancelled", final["state"] == "cancelled", final)
        check("cancelled_job_wrote_no_model", not os.path.exists(os.path.join(DIR, "long.delta")))
        r = request("DELETE", "/api/jobs/%s" % jid)
        check("finished_job_forgotten", r.status == 200 and request("GET", "/api/jobs/%s" % jid).status == 404)
    except TimeoutError as e:
        check("job_cancelled", False, str(e))
finally:
    server.send_signal(signal.SIGTERM)
    try:
        rc = server.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        server.kill()
        rc = None
    with open(os.path.join(WORK, "server.log")) as f:
        log = f.read()
    check("sigterm_stops_cleanly", rc == 0, "status %s; the server's stderr ends:\n%s" % (rc, log[-3000:]))
    check("server_reported_no_errors", "ERROR: " not in log and "runtime error" not in log, log[-3000:])

print("%d passed, %d failed, 0 skipped" % (passed, failed))
sys.exit(1 if failed else 0)
