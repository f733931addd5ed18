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
        self.http_port = free_port()
        self.lp_port = free_port() if lp else None
        self.query_port = free_port()
        if log_path is None:
            log_path = os.path.join(os.path.dirname(data), "teutod-%d.log" % self.http_port)
        self.log_path = log_path
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
        deadline = time.time() + start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("teutod exited with %d: %s" % (self.proc.returncode, self.logtext()))
            try:
                st, _, _ = request(self.http_port, "GET", "/ping")
                if st == 204:
                    return
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
