"""What the integration tests share: the real teutod on ephemeral loopback ports in a
temporary directory, and a minimal HTTP client. Standard library only.

Each test program imports it (its own directory is on sys.path when it runs as a script) and
adds the helpers only it needs, e.g. by subclassing Server.
"""
import http.client
import os
import signal
import socket
import subprocess
import time

SRC = os.environ.get("TEUTO_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TEUTO_BUILD_DIR", os.path.join(SRC, "build"))
TEUTOD = os.path.abspath(os.path.join(BUILD, "teutod"))
TEUTO = os.path.abspath(os.path.join(BUILD, "teuto"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (status, headers dict, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


class Server:
    """The real teutod, started on free loopback ports and ready once /ping answers 204.

    data=None leaves --data out (the config file's value counts); lp=False turns the TCP line
    protocol listener off. The log goes to log_path (default: next to the data directory)."""

    def __init__(self, data, args=(), config=None, cwd=None, log_path=None, lp=True,
                 start_timeout_s=30):
        self.data = data
        # A port free_port() saw free may be taken by someone else before teutod binds it:
        # then teutod exits with "Address already in use", and it is started again on others.
        for attempt in range(5):
            ports = set()
            while len(ports) < 3:
                ports.add(free_port())
            ports = sorted(ports)
            self.http_port, lp_port, self.query_port = ports
            self.lp_port = lp_port if lp else None
            path = log_path
            if path is None:
                path = os.path.join(os.path.dirname(data), "teutod-%d.log" % self.http_port)
            self.log_path = path
            cmd = [TEUTOD]
            if data is not None:
                cmd += ["--data", data]
            cmd += ["--http", "127.0.0.1:%d" % self.http_port,
                    "--lp", "127.0.0.1:%d" % self.lp_port if lp else "off",
                    "--query", "127.0.0.1:%d" % self.query_port]
            if config:
                cmd += ["--config", config]
            cmd += list(args)
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
            if self._wait_ready(start_timeout_s):
                return
            self.log.close()
            if "Address already in use" not in self.logtext() or attempt == 4:
                raise RuntimeError("teutod exited with %d: %s" % (self.proc.returncode, self.logtext()))

    def _wait_ready(self, timeout_s):
        """True once /ping answers 204; False if teutod exited first."""
        deadline = time.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                return False
            try:
                st, _, _ = request(self.http_port, "GET", "/ping")
                if st == 204:
                    return True
            except OSError:
                pass
            if time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("teutod did not answer /ping: " + self.logtext())
            time.sleep(0.05)

    def logtext(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("teutod died (%d): %s" % (self.proc.returncode, self.logtext()[-2000:]))

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig and waits for the exit; returns the exit status."""
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("teutod did not stop within %d s" % timeout)
        self.log.close()
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def metrics(self):
        _, _, body = request(self.http_port, "GET", "/metrics")
        return body.decode()


def run_tests(tests, tmp, finish=None):
    """Runs the test functions (only those named on the command line, if any), printing
    'ok NAME (s)' or 'FAIL NAME' with its traceback, then 'N passed, M failed'. finish(), if
    given, runs after the tests and returns how many more failures it found. tmp (the tests'
    scratch directory) is removed when everything passed, else kept and named. Returns the
    exit status for sys.exit."""
    import shutil
    import sys
    import traceback
    for p in (TEUTOD, TEUTO):
        if not os.access(p, os.X_OK):
            print("missing binary %s (build first)" % p)
            return 1
    only = sys.argv[1:]
    passed = failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        t0 = time.time()
        try:
            t()
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.time() - t0))
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__)
            traceback.print_exc()
        sys.stdout.flush()
    if finish:
        failed += finish()
    print("%d passed, %d failed" % (passed, failed))
    if failed == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("data and logs kept in " + tmp)
    return 1 if failed else 0
