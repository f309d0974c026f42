"""The web view at --listen and --har, in a real headless Chromium (Debian's chromium,
chromium-driver, python3-selenium): curl, python and node requests through nginx appear as rows
with their method, path, status, pid and comm; a gzip body is shown decoded; captured HTML runs
nothing; the pid filter leaves exactly one client's rows; the page's HAR and the --har file are
HAR 1.2 with exact URLs, statuses and sizes, also after SIGINT/SIGTERM; foreign Origin/Host,
wrong content type and oversize bodies are refused; 20 000 messages keep the page responsive."""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

import helpers

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = "/tmp/ecapture-web-view.png"
ROW_LATENCY = 2.0  # seconds from a client's exit to its row on the page (issue 15)
ROW_WAIT = 10.0  # the other waits for rows (typically well under 1 s)

try:
    try:
        from selenium import webdriver
    except ImportError:
        # Debian's python3-selenium, when the tests run under another python3 (pyenv, venv).
        import sys
        sys.path.append("/usr/lib/python3/dist-packages")
        from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - scripts/setup.sh installs python3-selenium
    HAVE_SELENIUM = False

# One keep-alive HTTPS connection, GET of each path; prints {"pid", "results": [[status, len]]}.
PY_CLIENT = textwrap.dedent("""\
    import http.client, json, os, ssl, sys
    port, cafile, count, paths = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    ctx = ssl.create_default_context(cafile=cafile)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    out = []
    for i in range(count):
        for p in paths:
            conn.request("GET", p)
            r = conn.getresponse()
            out.append([r.status, len(r.read())])
    print(json.dumps({"pid": os.getpid(), "results": out[:50], "n": len(out)}), flush=True)
""")

NODE_CLIENT = textwrap.dedent("""\
    const https = require('https'), fs = require('fs');
    const [port, ca, path] = process.argv.slice(2);
    https.get({host: '127.0.0.1', port: +port, path, ca: fs.readFileSync(ca), agent: false},
              (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => console.log(JSON.stringify({pid: process.pid, status: res.statusCode,
                                                      size: Buffer.concat(chunks).length})));
    }).on('error', (e) => { console.error(e); process.exit(1); });
""")

XSS_BODY = (b"<html><script>window.__xss = 1; document.title = 'pwned';</script>"
            b"<img src=x onerror=\"window.__xss = 2\"><b>bold</b></html>\n")


def raw_request(port, method, path, headers, body=b""):
    """(status, body) of one request sent with exactly these headers (no defaults added)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    if body or method == "POST":
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def check_har(testcase, doc):
    """The HAR 1.2 shape a reader relies on; returns the entries."""
    testcase.assertEqual(doc["log"]["version"], "1.2")
    testcase.assertEqual(doc["log"]["creator"]["name"], "ecapture")
    for e in doc["log"]["entries"]:
        for key in ("startedDateTime", "time", "request", "response", "cache", "timings"):
            testcase.assertIn(key, e)
        testcase.assertRegex(e["startedDateTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        for key in ("method", "url", "httpVersion", "cookies", "headers", "queryString",
                    "headersSize", "bodySize"):
            testcase.assertIn(key, e["request"])
        for key in ("status", "statusText", "httpVersion", "cookies", "headers", "content",
                    "redirectURL", "headersSize", "bodySize"):
            testcase.assertIn(key, e["response"])
        testcase.assertIn("size", e["response"]["content"])
        testcase.assertIn("mimeType", e["response"]["content"])
    return doc["log"]["entries"]


@unittest.skipUnless(HAVE_SELENIUM and os.access(CHROMIUM, os.X_OK) and
                     os.access(CHROMEDRIVER, os.X_OK),
                     "chromium, chromium-driver or python3-selenium missing (scripts/setup.sh)")
class WebView(helpers.E2ETestCase):
    @classmethod
    def setUpClass(cls):
        reason = helpers.skip_reason()
        if reason:
            raise unittest.SkipTest(reason)
        cls.cls_procs = helpers.Procs()
        cls.addClassCleanup(cls.cls_procs.stop_all)
        cls.cls_tmp = tempfile.mkdtemp(prefix="ecap-e2e-web-")
        if not helpers.KEEP_TMP:
            cls.addClassCleanup(shutil.rmtree, cls.cls_tmp, True)
        cls.cert, cls.key = helpers.make_cert(cls.cls_tmp)
        cls.nginx = helpers.Nginx(cls.cls_tmp, cls.cert, cls.key, gzip=True).start(cls.cls_procs)
        cls.port = cls.nginx.port
        os.makedirs(os.path.join(cls.nginx.root, "gz"), mode=0o755)
        cls.json_doc = {"name": "ecapture", "items": list(range(40)), "nested": {"ok": True}}
        cls.json_bytes = (json.dumps(cls.json_doc) + "\n").encode()
        cls.nginx.write_file("gz/data.json", cls.json_bytes)
        cls.nginx.write_file("xss.html", XSS_BODY)
        cls.files = {}
        for name in ("curl-a.txt", "py-1.txt", "py-2.txt", "node.txt", "hot.txt"):
            body = helpers.rand_printable(100 + len(cls.files) * 37)
            cls.files[name] = body
            cls.nginx.write_file(name, body)
        cls.py_client = os.path.join(cls.cls_tmp, "client.py")
        with open(cls.py_client, "w") as f:
            f.write(PY_CLIENT)
        cls.node_client = os.path.join(cls.cls_tmp, "client.js")
        with open(cls.node_client, "w") as f:
            f.write(NODE_CLIENT)

    # -- helpers --------------------------------------------------------------------------------

    def browser(self):
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  "--window-size=1600,900",
                  f"--user-data-dir={tempfile.mkdtemp(prefix='chrome-', dir=self.tmp)}"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(CHROMEDRIVER, log_path=os.path.join(self.tmp, "chromedriver.log"))
        driver = webdriver.Chrome(service=service, options=opts)
        pid = service.process.pid
        self.addCleanup(self._quit, driver, pid)
        driver.set_script_timeout(30)
        return driver

    @staticmethod
    def _quit(driver, driver_pid):
        try:
            driver.quit()
        finally:
            if os.path.exists(f"/proc/{driver_pid}"):
                os.kill(driver_pid, signal.SIGKILL)

    def listen_args(self):
        self.api_port = helpers.free_port()
        return ["--listen", f"127.0.0.1:{self.api_port}"]

    def page_rows(self, driver):
        return driver.execute_script(
            "return window.ecapture.rows.map(r => ({id: r.id, kind: r.kind, pid: r.pid, "
            "comm: r.comm, method: r.method, path: r.path, status: r.status, "
            "resp_size: r.resp_size, host: r.host}))")

    def wait_rows(self, driver, pred, timeout, what):
        rows = []

        def ok():
            nonlocal rows
            rows = self.page_rows(driver)
            return pred(rows)
        if not helpers.wait_until(ok, timeout, interval=0.05):
            self.fail(f"{what} not in the page within {timeout} s; rows: {rows[-30:]}")
        return rows

    def curl(self, path, *extra):
        p = self.procs.popen(["curl", "-sS", "--http1.1", "--cacert", self.cert, *extra,
                              "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                              f"https://127.0.0.1:{self.port}{path}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        code, size = out.decode().split()
        return p.pid, int(code), int(size)

    def python(self, *paths, count=1):
        p = self.procs.popen([helpers.DEBIAN_PYTHON, self.py_client, str(self.port), self.cert,
                              str(count), *paths], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, err)
        return json.loads(out)

    def open_page(self, driver):
        driver.get(f"http://127.0.0.1:{self.api_port}/")
        helpers.wait_until(lambda: driver.execute_script(
            "return !!(window.ecapture && window.ecapture.ready)"), 10)
        self.assertTrue(driver.execute_script("return window.ecapture.ready"),
                        "the page did not connect to the live stream")

    def click_row(self, driver, row_id):
        """Scrolls the virtual list to the row, clicks it and waits for its detail. Rows are
        recycled as new ones arrive, so finding and clicking happen in one script."""
        clicked = False

        def click():
            nonlocal clicked
            clicked = driver.execute_script(
                "const id = arguments[0];"
                "const i = window.ecapture.view.findIndex(r => r.id === id);"
                "const list = document.getElementById('rows');"
                "list.scrollTop = Math.max(0, i * 26 - 100);"
                "list.dispatchEvent(new Event('scroll'));"
                "const el = document.querySelector(`.row[data-id='${id}']`);"
                "if (!el) return false;"
                "el.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
                "return true;", row_id)
            return clicked
        self.assertTrue(helpers.wait_until(click, 5), f"row {row_id} not rendered")
        self.assertTrue(helpers.wait_until(lambda: driver.execute_script(
            "const d = document.getElementById('detail');"
            "return !d.hidden && d.dataset.id === String(arguments[0]) && "
            "document.querySelector('#tabs button') !== null", row_id), 5),
            f"no detail for row {row_id}")

    def detail_body_text(self, driver):
        return driver.execute_script(
            "const p = document.querySelector('#detail-body pre.body-text');"
            "return p ? p.textContent : null")

    # -- tests ----------------------------------------------------------------------------------

    def test_01_live_rows_detail_filter_har(self):
        har_path = os.path.join(self.tmp, "run.har")
        with self.run_ecapture(["tls", *self.listen_args(), "--har", har_path]) as run:
            driver = self.browser()
            self.open_page(driver)
            # curl, then python (two requests on one connection), then gzip and hostile HTML.
            curl_pid, code, size = self.curl("/curl-a.txt")
            self.assertEqual((code, size), (200, len(self.files["curl-a.txt"])))
            # From the client's exit to its row on the page: at most ROW_LATENCY.
            t0 = time.monotonic()
            rows = self.wait_rows(driver, lambda rs: any(
                r["pid"] == curl_pid and r["status"] == 200 for r in rs), ROW_LATENCY,
                "curl's exchange")
            curl_latency = time.monotonic() - t0
            mine = [r for r in rows if r["pid"] == curl_pid]
            self.assertEqual([(r["kind"], r["comm"], r["method"], r["path"], r["status"],
                               r["resp_size"]) for r in mine],
                             [("http", "curl", "GET", "/curl-a.txt", 200, size)])
            py = self.python("/py-1.txt", "/py-2.txt")
            self.assertEqual(py["results"], [[200, len(self.files["py-1.txt"])],
                                             [200, len(self.files["py-2.txt"])]])
            py_comm = "python3.11"  # /usr/bin/python3.11
            rows = self.wait_rows(driver, lambda rs: len(
                [r for r in rs if r["pid"] == py["pid"] and r["status"] == 200]) == 2, ROW_WAIT,
                "python's two exchanges")
            self.assertEqual([(r["comm"], r["method"], r["path"], r["status"]) for r in rows
                              if r["pid"] == py["pid"]],
                             [(py_comm, "GET", "/py-1.txt", 200),
                              (py_comm, "GET", "/py-2.txt", 200)])
            gz_pid, code, gz_wire = self.curl("/gz/data.json", "--compressed")
            self.assertEqual(code, 200)
            self.assertLess(gz_wire, len(self.json_bytes), "nginx did not compress")
            xss_pid, code, _ = self.curl("/xss.html")
            rows = self.wait_rows(driver, lambda rs: any(r["pid"] == xss_pid and r["status"] == 200
                                                         for r in rs), ROW_WAIT,
                                   "the HTML exchange")
            # nginx's side of each exchange is a row too (its worker: READ request, WRITE reply).
            workers = set(self.nginx.worker_pids())
            server_paths = sorted(r["path"] for r in rows if r["pid"] in workers)
            self.assertEqual(server_paths, sorted(["/curl-a.txt", "/py-1.txt", "/py-2.txt",
                                                   "/gz/data.json", "/xss.html"]))

            # The gzip body, decoded and pretty-printed.
            gz_row = next(r for r in rows if r["pid"] == gz_pid)
            self.click_row(driver, gz_row["id"])
            self.assertTrue(helpers.wait_until(lambda: self.detail_body_text(driver), 5))
            self.assertEqual(self.detail_body_text(driver), json.dumps(self.json_doc, indent=2))
            note = driver.execute_script(
                "return document.querySelector('#detail-body .section:nth-child(2) .note')"
                ".textContent")
            self.assertIn("decoded from gzip", note)

            # Hostile HTML: shown as text, nothing runs, no element is created from it.
            xss_row = next(r for r in rows if r["pid"] == xss_pid)
            self.click_row(driver, xss_row["id"])
            self.assertTrue(helpers.wait_until(lambda: self.detail_body_text(driver), 5))
            self.assertEqual(self.detail_body_text(driver), XSS_BODY.decode())
            time.sleep(0.3)  # an onerror would have fired by now
            self.assertEqual(driver.execute_script(
                "return [typeof window.__xss, document.title, "
                "document.querySelectorAll('#detail-body img, #detail-body script, "
                "#detail-body b').length]"), ["undefined", "ecapture", 0])

            # The pid filter leaves exactly python's two rows.
            driver.find_element(By.ID, "filter-pid").send_keys(str(py["pid"]))
            view = driver.execute_script(
                "return window.ecapture.view.map(r => [r.pid, r.path])")
            self.assertEqual(view, [[py["pid"], "/py-1.txt"], [py["pid"], "/py-2.txt"]])
            shown = driver.find_element(By.ID, "count-shown").text
            self.assertEqual(shown, "2")
            # The raw messages of the shown rows as JSON lines: request and response of each.
            jsonl = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "window.ecapture.buildExport('jsonl', 'filtered').then(done);")
            lines = [json.loads(x) for x in jsonl.splitlines()]
            self.assertEqual([x["pid"] for x in lines], [py["pid"]] * 4, jsonl[:2000])
            driver.find_element(By.ID, "filter-pid").clear()
            driver.execute_script("document.getElementById('filter-pid')"
                                  ".dispatchEvent(new Event('input'))")

            # The page's HAR of every shown row.
            har_text = driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "window.ecapture.buildExport('har', 'filtered').then(done, e => done('ERR ' + e));")
            entries = check_har(self, json.loads(har_text))
            client = {e["_pid"]: e for e in entries if e["_pid"] in (curl_pid, gz_pid, xss_pid)}
            base = f"https://127.0.0.1:{self.port}"
            self.assertEqual(client[curl_pid]["request"]["url"], base + "/curl-a.txt")
            self.assertEqual(client[curl_pid]["response"]["status"], 200)
            self.assertEqual(client[curl_pid]["response"]["content"]["size"],
                             len(self.files["curl-a.txt"]))
            self.assertEqual(client[curl_pid]["response"]["bodySize"],
                             len(self.files["curl-a.txt"]))
            self.assertEqual(client[gz_pid]["request"]["url"], base + "/gz/data.json")
            self.assertEqual(client[gz_pid]["response"]["content"]["size"], len(self.json_bytes))
            self.assertEqual(client[gz_pid]["response"]["content"]["text"],
                             self.json_bytes.decode())
            # bodySize: what went over the wire: the gzip bytes plus the chunk framing.
            self.assertGreaterEqual(client[gz_pid]["response"]["bodySize"], gz_wire)
            self.assertLess(client[gz_pid]["response"]["bodySize"], gz_wire + 32)
            py_urls = [e["request"]["url"] for e in entries if e["_pid"] == py["pid"]]
            self.assertEqual(py_urls, [base + "/py-1.txt", base + "/py-2.txt"])
            # Other processes on this host may speak TLS too: count ours (clients and nginx).
            ours = {curl_pid, py["pid"], gz_pid, xss_pid} | workers
            self.assertEqual(len([e for e in entries if e["_pid"] in ours]), 10,
                             [e["request"]["url"] for e in entries])

            # A screenshot with a row selected, for the record.
            self.click_row(driver, gz_row["id"])
            time.sleep(0.2)
            driver.save_screenshot(SCREENSHOT)
            driver.save_screenshot(os.path.join(self.tmp, "web-view.png"))
            print(f"\n  web: curl row in the page {curl_latency:.2f} s after the request; "
                  f"screenshot {SCREENSHOT}")
        self.assertRegex(run.stderr_text(), r"har: \d+ exchanges written to " + re.escape(har_path))
        with open(har_path) as f:
            entries = [e for e in check_har(self, json.load(f)) if e["_pid"] in ours]
        self.assertEqual(os.stat(har_path).st_mode & 0o777, 0o600)
        by_pid = {}
        for e in entries:
            by_pid.setdefault(e["_pid"], []).append(
                (e["request"]["method"], e["request"]["url"], e["response"]["status"],
                 e["response"]["content"]["size"]))
        base = f"https://127.0.0.1:{self.port}"
        self.assertEqual(by_pid[curl_pid], [("GET", base + "/curl-a.txt", 200,
                                             len(self.files["curl-a.txt"]))])
        self.assertEqual(by_pid[py["pid"]], [
            ("GET", base + "/py-1.txt", 200, len(self.files["py-1.txt"])),
            ("GET", base + "/py-2.txt", 200, len(self.files["py-2.txt"]))])
        self.assertEqual(by_pid[gz_pid], [("GET", base + "/gz/data.json", 200,
                                           len(self.json_bytes))])
        self.assertEqual(len(entries), 10)
        self.assertEqual([n for n in os.listdir(self.tmp) if n.endswith(".tmp")], [])

    @unittest.skipUnless(os.access("/usr/bin/node", os.X_OK), "/usr/bin/node missing")
    def test_02_node_rows(self):
        """node links OpenSSL statically: its own capture (--libssl /usr/bin/node)."""
        with self.run_ecapture(["tls", "--libssl", "/usr/bin/node", *self.listen_args()]):
            driver = self.browser()
            self.open_page(driver)
            p = self.procs.popen(["/usr/bin/node", self.node_client, str(self.port), self.cert,
                                  "/node.txt"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            res = json.loads(out)
            self.assertEqual((res["status"], res["size"]), (200, len(self.files["node.txt"])))
            rows = self.wait_rows(driver, lambda rs: any(r["pid"] == p.pid and r["status"] == 200
                                                         for r in rs), ROW_WAIT,
                                   "node's exchange")
            self.assertEqual([(r["comm"], r["method"], r["path"], r["status"], r["resp_size"])
                              for r in rows if r["pid"] == p.pid],
                             [("node", "GET", "/node.txt", 200, len(self.files["node.txt"]))])
            # Clear hides every row so far; Pause holds new rows until Resume.
            driver.find_element(By.ID, "clear").click()
            self.assertEqual(driver.find_element(By.ID, "count-shown").text, "0")
            driver.find_element(By.ID, "pause").click()
            self.assertEqual(driver.find_element(By.ID, "pause").text, "Resume")
            q = self.procs.popen(["/usr/bin/node", self.node_client, str(self.port), self.cert,
                                  "/node.txt"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            q.communicate(timeout=60)
            self.assertEqual(q.returncode, 0)
            self.assertTrue(helpers.wait_until(lambda: driver.execute_script(
                "return window.ecapture.held.length > 0"), ROW_WAIT), "no rows held while paused")
            self.assertFalse([r for r in self.page_rows(driver) if r["pid"] == q.pid])
            driver.find_element(By.ID, "pause").click()
            rows = self.wait_rows(driver, lambda rs: any(r["pid"] == q.pid and r["status"] == 200
                                                         for r in rs), ROW_WAIT,
                                  "node's second exchange after Resume")
            view = driver.execute_script("return window.ecapture.view.map(r => r.pid)")
            self.assertNotIn(p.pid, view)  # still cleared
            self.assertIn(q.pid, view)

    def test_03_har_after_sigterm_and_bad_har(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            har_path = os.path.join(self.tmp, f"{sig.name}.har")
            with self.run_ecapture(["tls", "--har", har_path], stop_signal=sig) as run:
                py = self.python("/py-1.txt", count=3)
                self.assertEqual(py["n"], 3)
                run.settle()
                self.assertFalse(os.path.exists(har_path), "the HAR appears only at the end")
            with open(har_path) as f:
                entries = check_har(self, json.load(f))
            mine = [(e["request"]["url"], e["response"]["status"], e["response"]["bodySize"])
                    for e in entries if e["_pid"] == py["pid"]]
            url = f"https://127.0.0.1:{self.port}/py-1.txt"
            self.assertEqual(mine, [(url, 200, len(self.files["py-1.txt"]))] * 3, sig.name)
        # An existing file is refused and kept; '' is refused; both before anything starts.
        existing = os.path.join(self.tmp, "SIGINT.har")
        before = open(existing, "rb").read()
        for args, msg in ((["--har", existing], f"ecapture: --har {existing}: the file exists"),
                          (["--har", ""], "ecapture: --har needs a file name")):
            r = subprocess.run([helpers.BINARY, "tls", *args], capture_output=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            lines = r.stderr.decode().strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertTrue(lines[0].startswith(msg), lines[0])
        self.assertEqual(open(existing, "rb").read(), before)
        # A capture that cannot start leaves neither the HAR nor its temporary file.
        failed = os.path.join(self.tmp, "failed", "x.har")
        os.makedirs(os.path.dirname(failed))
        r = subprocess.run([helpers.BINARY, "tls", "--libssl", "/nonexistent/libssl.so.3",
                            "--har", failed], capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(os.listdir(os.path.dirname(failed)), [], r.stderr)
        # --har before the subcommand works too (a global flag).
        har2 = os.path.join(self.tmp, "global.har")
        with self.run_ecapture(["--har", har2, "tls"]):
            self.python("/py-2.txt")
        with open(har2) as f:
            self.assertGreaterEqual(len(check_har(self, json.load(f))), 1)

    def test_04_request_guard_and_token(self):
        with self.run_ecapture(["tls", *self.listen_args()]):
            port = self.api_port
            host = f"127.0.0.1:{port}"
            ok = {"Host": host}
            self.assertEqual(raw_request(port, "GET", "/status", ok)[0], 200)
            status, body = raw_request(port, "GET", "/", ok)
            self.assertEqual(status, 200)
            self.assertIn(b'<script src="/app.js" defer></script>', body)
            # DNS rebinding: the attacker's name in Host.
            status, body = raw_request(port, "GET", "/status", {"Host": f"evil.example:{port}"})
            self.assertEqual(status, 403, body)
            status, _ = raw_request(port, "GET", "/", {"Host": f"evil.example:{port}"})
            self.assertEqual(status, 403)
            # A page of another site POSTing to the API.
            status, body = raw_request(port, "POST", "/tls", dict(
                ok, Origin="http://evil.example", **{"Content-Type": "application/json"}),
                b'{"pid": 1}')
            self.assertEqual(status, 403, body)
            self.assertIn(b"cross-origin", body)
            status, _ = raw_request(port, "GET", "/api/stream",
                                    dict(ok, Origin="http://evil.example"))
            self.assertEqual(status, 403)
            # The form-encoded body a plain HTML form (or curl -d) sends.
            status, body = raw_request(port, "POST", "/tls", dict(
                ok, **{"Content-Type": "application/x-www-form-urlencoded"}), b'{"pid": 1}')
            self.assertEqual(status, 415, body)
            status, body = raw_request(port, "POST", "/tls", dict(
                ok, **{"Content-Type": "application/json"}), b"x" * (2 << 20))
            self.assertEqual(status, 413, body)
            # Same origin is fine.
            status, body = raw_request(port, "POST", "/api/export/har", dict(
                ok, Origin=f"http://{host}", **{"Content-Type": "application/json"}),
                b'{"ids": []}')
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["log"]["entries"], [])
            # Every answer carries the strict CSP.
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.getheader("Content-Security-Policy"),
                             "default-src 'none'; script-src 'self'; style-src 'self'; "
                             "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; "
                             "form-action 'none'; frame-ancestors 'none'")
            self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
            conn.close()
        # With a token: the page loads (it holds no data) and asks for the token once; the data
        # needs it.
        token = helpers.rand_token(20)
        with self.run_ecapture(["tls", *self.listen_args(), "--listen-token", token]):
            port = self.api_port
            ok = {"Host": f"127.0.0.1:{port}"}
            self.assertEqual(raw_request(port, "GET", "/", ok)[0], 200)
            self.assertEqual(raw_request(port, "GET", "/api/info", ok)[0], 401)
            self.assertEqual(raw_request(port, "GET", "/api/info", dict(
                ok, Authorization=f"Bearer {token}"))[0], 200)
            driver = self.browser()
            driver.get(f"http://127.0.0.1:{port}/")
            self.assertTrue(helpers.wait_until(lambda: driver.execute_script(
                "return !document.getElementById('token-dialog').hidden"), 5),
                "the page did not ask for the token")
            driver.find_element(By.ID, "token-input").send_keys("wrong")
            driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
            self.assertTrue(helpers.wait_until(lambda: driver.execute_script(
                "return !document.getElementById('token-dialog').hidden && "
                "document.getElementById('token-error').textContent === 'wrong token'"), 5))
            driver.find_element(By.ID, "token-input").clear()
            driver.find_element(By.ID, "token-input").send_keys(token)
            driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
            self.assertTrue(helpers.wait_until(lambda: driver.execute_script(
                "return window.ecapture.ready === true"), 10), "no live stream with the token")
            curl_pid, code, _ = self.curl("/curl-a.txt")
            self.wait_rows(driver, lambda rs: any(r["pid"] == curl_pid for r in rs), ROW_WAIT,
                           "curl's exchange (token)")

    def test_06_keylog_and_pcap_downloads(self):
        """In keylog mode the page offers the key log, in pcap mode the pcapng so far: the bytes
        served are the file's."""
        keylog = os.path.join(self.tmp, "keys.log")
        with self.run_ecapture(["tls", "-m", "keylog", "-k", keylog, *self.listen_args()]):
            ok = {"Host": f"127.0.0.1:{self.api_port}"}
            info = json.loads(raw_request(self.api_port, "GET", "/api/info", ok)[1])
            self.assertEqual((info["keylog"], info["pcap"]), (True, False))
            self.curl("/curl-a.txt")
            self.assertTrue(helpers.wait_until(
                lambda: os.path.exists(keylog) and os.path.getsize(keylog) > 0, 10))
            before = open(keylog, "rb").read()
            status, body = raw_request(self.api_port, "GET", "/api/download/keylog", ok)
            self.assertEqual(status, 200)
            self.assertEqual(body[:len(before)], before)
            self.assertRegex(body.decode(),
                             r"(CLIENT_TRAFFIC_SECRET_0|CLIENT_RANDOM) [0-9a-f]{64} ")
            status, body = raw_request(self.api_port, "GET", "/api/download/pcap", ok)
            self.assertEqual(status, 404, body)
            self.assertIn(b"writes no pcapng", body)
        pcap = os.path.join(self.tmp, "web.pcapng")
        with self.run_ecapture(["tls", "-m", "pcap", "-i", "lo", "-w", pcap, *self.listen_args(),
                                "tcp", "port", str(self.port)]):
            ok = {"Host": f"127.0.0.1:{self.api_port}"}
            info = json.loads(raw_request(self.api_port, "GET", "/api/info", ok)[1])
            self.assertEqual((info["keylog"], info["pcap"]), (False, True))
            self.curl("/curl-a.txt")
            # Flushed every second: wait for the packets, then download what is there.
            self.assertTrue(helpers.wait_until(
                lambda: os.path.exists(pcap) and os.path.getsize(pcap) > 2000, 10))
            status, body = raw_request(self.api_port, "GET", "/api/download/pcap", ok)
            self.assertEqual(status, 200)
            self.assertEqual(body[:4], b"\x0a\x0d\x0d\x0a")  # section header block
            on_disk = open(pcap, "rb").read()
            self.assertEqual(body, on_disk[:len(body)])
            self.assertGreater(len(body), 2000)

    def test_05_twenty_thousand_messages(self):
        """5000 requests on one connection: 4 messages each (python's and nginx's side) = 20000
        messages, 10000 rows; the page keeps up and filters fast; the server stays bounded."""
        with self.run_ecapture(["tls", *self.listen_args(), "--web-history", "20000"]) as run:
            driver = self.browser()
            self.open_page(driver)
            t0 = time.monotonic()
            py = self.python("/hot.txt", count=5000)
            t_load = time.monotonic() - t0
            self.assertEqual(py["n"], 5000)
            rows = None

            def all_rows():
                nonlocal rows
                rows = driver.execute_script(
                    "return [window.ecapture.rows.length, window.ecapture.rows.filter("
                    "r => r.pid === arguments[0] && r.status === 200).length]", py["pid"])
                return rows[1] == 5000 and rows[0] >= 10000
            ok = helpers.wait_until(all_rows, 30, interval=0.2)
            self.assertTrue(ok, f"page rows (total, python's answered): {rows}")
            # A scripted filter change: typing a pid, then clearing it.
            timings = driver.execute_script(
                "const out = [];"
                "for (const v of [String(arguments[0]), '', 'hot', '']) {"
                "  const t = performance.now();"
                "  const el = document.getElementById(v === 'hot' ? 'filter-text' : 'filter-pid');"
                "  el.value = v; el.dispatchEvent(new Event('input'));"
                "  out.push([performance.now() - t, window.ecapture.view.length]);"
                "}"
                "return out;", py["pid"])
            self.assertEqual(timings[0][1], 5000)
            self.assertGreaterEqual(timings[1][1], 10000)
            self.assertEqual(timings[2][1], 10000)  # python's and nginx's /hot.txt rows
            for ms, _ in timings:
                self.assertLess(ms, 1000, timings)
            rss_kb = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{run.pid}/status").read())
                         .group(1))
            st = json.loads(raw_request(self.api_port, "GET", "/status",
                                        {"Host": f"127.0.0.1:{self.api_port}"})[1])
            info = json.loads(raw_request(self.api_port, "GET", "/api/info",
                                          {"Host": f"127.0.0.1:{self.api_port}"})[1])
            self.assertEqual(st["data"]["counters"]["lost"], 0, st)
            self.assertEqual(st["data"]["output"]["dropped_events"], 0, st)
            self.assertEqual(info["stats"]["client_dropped"], 0, info)
            self.assertLessEqual(info["stats"]["history_bytes"], 128 << 20)
            # The server's memory: history (bounded at 128 MiB of payload) + the rest.
            self.assertLess(rss_kb, 512 * 1024, f"ecapture RSS {rss_kb} kB")
            page_heap = driver.execute_script(
                "return performance.memory ? performance.memory.usedJSHeapSize : 0")
            print(f"\n  web 20k: load {t_load:.1f} s, rows {rows[0]}, filter ms "
                  f"{[round(t, 1) for t, _ in timings]}, ecapture RSS {rss_kb // 1024} MiB, "
                  f"history {info['stats']['history_bytes'] // 1024} KiB, "
                  f"page heap {page_heap // (1 << 20)} MiB")


if __name__ == "__main__":
    unittest.main()
