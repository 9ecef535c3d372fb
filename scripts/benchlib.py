"""What the S3 benchmarks share: a throwaway Garage, rclone, a counting
proxy, and measuring.

`scripts/bench-upload`, `scripts/bench-prune` and `scripts/bench-run` import this module (they put
their own directory on `sys.path`). Garage is the binary `scripts/setup --test`
builds into ~/.cargo/bin; it runs single-node on free loopback ports with its
data in the benchmark's work dir, and one bucket made at start.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def die(message):
    """Stops the benchmark with `message`, named after the running script."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_garage(work, bucket):
    """A single-node Garage with `bucket`; returns (process, client env).

    The client env has the AWS_* variables vidpipe reads (key, secret,
    region, endpoint) and an XDG_STATE_HOME inside `work`.
    """
    garage = shutil.which("garage") or str(Path.home() / ".cargo" / "bin" / "garage")
    if not Path(garage).exists():
        die("garage not found (bash scripts/setup --test builds it)")
    rpc, s3 = free_port(), free_port()
    config = work / "garage.toml"
    config.write_text(
        f'metadata_dir = "{work}/meta"\ndata_dir = "{work}/data"\ndb_engine = "sqlite"\n'
        f'replication_factor = 1\nrpc_bind_addr = "127.0.0.1:{rpc}"\nrpc_public_addr = "127.0.0.1:{rpc}"\n'
        f'rpc_secret = "{secrets.token_hex(32)}"\n\n[s3_api]\ns3_region = "garage"\n'
        f'api_bind_addr = "127.0.0.1:{s3}"\nroot_domain = ".s3.garage.localhost"\n')
    key, secret = "GK" + secrets.token_hex(12), secrets.token_hex(32)
    env = dict(os.environ, GARAGE_DEFAULT_ACCESS_KEY=key, GARAGE_DEFAULT_SECRET_KEY=secret,
               GARAGE_DEFAULT_BUCKET=bucket, RUST_LOG="warn")
    log = open(work / "garage.log", "w")
    proc = subprocess.Popen([garage, "-c", str(config), "server", "--single-node", "--default-bucket"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    client_env = dict(base, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_REGION="garage",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{s3}", XDG_STATE_HOME=str(work / "state"))
    return proc, client_env


def stop_garage(proc):
    proc.terminate()
    proc.wait()


def wait_ready(vidpipe, env, work, bucket):
    """Waits until Garage takes a small upload from vidpipe (60 s at most)."""
    probe = work / "probe.txt"
    probe.write_text("ready?")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = subprocess.run([str(vidpipe), "upload-chunked", str(probe), f"s3://{bucket}/probe.txt", "-q"],
                           env=env, capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    die("Garage did not become ready; see garage.log in the work dir")


def ensure_rclone():
    """Installs the Debian package when rclone is missing (sudo unless root)."""
    if shutil.which("rclone"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("rclone not found: installing the Debian package", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    installed = subprocess.run(sudo + ["apt-get", "install", "-y", "rclone"], env=env)
    if installed.returncode != 0:
        subprocess.run(sudo + ["apt-get", "update"], env=env)
        installed = subprocess.run(sudo + ["apt-get", "install", "-y", "rclone"], env=env)
    if installed.returncode != 0 or shutil.which("rclone") is None:
        die("rclone not found and apt-get could not install it")


def rclone_env(env, remote="bench"):
    """`env` plus an rclone remote `remote:` for the same Garage, so no
    config file is needed."""
    prefix = f"RCLONE_CONFIG_{remote.upper()}_"
    return dict(env, **{
        prefix + "TYPE": "s3", prefix + "PROVIDER": "Other",
        prefix + "ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        prefix + "SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
        prefix + "ENDPOINT": env["AWS_ENDPOINT_URL"], prefix + "REGION": "garage",
        prefix + "FORCE_PATH_STYLE": "true",
    })


def measured(cmd, env):
    """Runs cmd; returns (wall seconds, peak RSS MiB). Dies when it fails."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Read stderr while waiting, so a chatty command cannot fill the pipe.
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        die(f"{cmd[0]} failed: {stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024


class CountingProxy:
    """A loopback HTTP proxy in front of `upstream` (`127.0.0.1:PORT`) that
    counts the bytes answered to each request line (`GET /bucket/key ...`).

    One request per connection: it asks the server to close after each
    answer, so every answer's bytes belong to one request line.
    """

    def __init__(self, upstream):
        import threading
        self.upstream = upstream
        self.answered = []
        self.lock = threading.Lock()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def bytes_for(self, method, path):
        """Bytes answered to `method` requests whose line contains `path`."""
        with self.lock:
            return sum(n for line, n in self.answered if line.startswith(method) and path in line)

    def reset(self):
        with self.lock:
            self.answered.clear()

    def _accept(self):
        import threading
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        import threading
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(1)
            if not chunk:
                client.close()
                return
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        kept = [l for l in lines[:-2] if not l.lower().startswith("connection:")]
        request = ("\r\n".join(kept) + "\r\nConnection: close\r\n\r\n").encode("latin-1")
        host, port = self.upstream.split(":")
        server = socket.create_connection((host, int(port)))
        server.sendall(request)

        def upload():
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    server.sendall(data)
                server.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=upload, daemon=True).start()
        answered = 0
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                answered += len(data)
                client.sendall(data)
        except OSError:
            pass
        with self.lock:
            self.answered.append((lines[0], answered))
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass
