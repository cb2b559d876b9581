"""Real infrastructure on free loopback ports, in a temp dir, for tests and benchmarks:
Redis, PostgreSQL, HAProxy, and N `utjima serve` processes behind it.

    with running_cluster(2, env={"UTJIMA_CALIB_MS": "2000"}) as c:
        c.url                    # http://127.0.0.1:P, HAProxy in front of every node
        c.nodes["A"].url         # one process directly (node ids A, B, ...)
        c.stop_node("A")         # SIGTERM; returns its exit status
        c.database_url           # postgresql+psycopg://..., the history every node shares
        c.haproxy_config         # the config HAProxy runs (docs/deploy.md prints the same)

Each piece is its own context manager too (`redis_server()`, `postgres()`, `haproxy()`,
`serve_node()`). PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the
`postgres` user (runuser), in a folder outside pytest's root-only temp dirs. Missing
programs raise `Unavailable` (tests skip on it). Everything started is stopped on exit,
SIGTERM first, then SIGKILL after a bound.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import REPO_ROOT, free_port, stop_process

START_TIMEOUT_S = 30.0
NODE_IDS = "ABCDEFGHJK"  # room code characters (schemas.ROOM_CODE_ALPHABET)


class Unavailable(RuntimeError):
    """A program the cluster needs is not installed here."""


def _wait_port(port: int, proc: subprocess.Popen | None, what: str, log: Path | None,
               timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-800:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout_s:g} s: {tail}")


@contextlib.contextmanager
def redis_server(root: Path) -> Iterator[str]:
    """Debian's redis-server, no persistence; yields redis://127.0.0.1:PORT/0."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise Unavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    log = root / "redis.log"
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root), "--logfile", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(proc)


def pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries (Debian: /usr/lib/postgresql/<v>/bin)."""
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / "initdb").exists():
            return d
    return None


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server (trust auth, user utjima); yields a SQLAlchemy URL
    (postgresql+psycopg://utjima@127.0.0.1:PORT/postgres)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        raise Unavailable("no PostgreSQL server here (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        raise Unavailable("PostgreSQL refuses to run as root and runuser is missing")
    # not under pytest's tmp dirs: those are private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="utjima-pg-"))
    data, port = root / "data", free_port()
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    try:
        subprocess.run(as_user + [str(bin_dir / "initdb"), "-D", str(data), "-U", "utjima",
                                  "--auth=trust"], check=True, capture_output=True, timeout=120)
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-l",
                                  str(root / "log"), "-w", "-t", "60", "-o",
                                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=90)
        _wait_port(port, None, "PostgreSQL", root / "log")
        yield f"postgresql+psycopg://utjima@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                  "-t", "30", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def haproxy_config(port: int, nodes: Mapping[str, int], stats_port: int | None = None,
                   maxconn: int | None = None) -> str:
    """HAProxy's config: rooms to their node by the code's first character, everything
    else (pages, new rooms, history) to any live node. The same text docs/deploy.md shows.
    `maxconn`: default what this machine's open-file limit allows (two descriptors a
    proxied connection), at most 20,000."""
    if maxconn is None:
        maxconn = max(256, min(20000, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 500) // 2))
    lines = [
        "global",
        f"    maxconn {maxconn}",
        "defaults",
        "    mode http",
        "    option forwardfor",  # utjima limits each client by X-Forwarded-For
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout tunnel 1h",  # an upgraded websocket
        "    timeout client-fin 5s",
        "frontend utjima",
        f"    bind 127.0.0.1:{port}",
    ]
    for node in nodes:
        lines.append(f"    acl room_{node} path_reg -i ^/(ws/rooms|api/rooms|r)/{node}")
    for node in nodes:
        # a node that is down: its rooms go to any live node, which answers from the
        # room directory ("server_restarted")
        lines.append(f"    use_backend node_{node} if room_{node} {{ nbsrv(node_{node}) gt 0 }}")
    lines.append("    default_backend any_node")
    for node, node_port in nodes.items():
        lines += [f"backend node_{node}",
                  f"    server {node} 127.0.0.1:{node_port} check inter 1s fall 2 rise 1"]
    lines += ["backend any_node", "    balance leastconn"]
    lines += [f"    server {node} 127.0.0.1:{node_port} check inter 1s fall 2 rise 1"
              for node, node_port in nodes.items()]
    if stats_port is not None:
        lines += ["frontend stats", f"    bind 127.0.0.1:{stats_port}",
                  "    stats enable", "    stats uri /"]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def haproxy(root: Path, nodes: Mapping[str, int]) -> Iterator[tuple[str, str]]:
    """Debian's haproxy in front of `nodes` (node id -> port); yields (url, config)."""
    exe = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists()
                                      else None)
    if exe is None:
        raise Unavailable("haproxy is not installed (apt-get install haproxy)")
    port = free_port()
    config = haproxy_config(port, nodes)
    path = root / "haproxy.cfg"
    path.write_text(config)
    check = subprocess.run([exe, "-c", "-q", "-f", str(path)], capture_output=True, text=True,
                           timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused its config: {check.stdout}{check.stderr}")
    log = root / "haproxy.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([exe, "-db", "-f", str(path)], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, "haproxy", log)
        yield f"http://127.0.0.1:{port}", config
    finally:
        stop_process(proc)


@dataclass
class Node:
    id: str
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_node(root: Path, node_id: str, *, redis_url: str, database_url: str,
               model_dir: Path | None = None, env: Mapping[str, str] | None = None,
               args: tuple[str, ...] = (), port: int | None = None) -> Node:
    """`utjima serve --node-id ID --redis ... --database-url ...` on a free port, once it
    answers /api/health (or RuntimeError with its output)."""
    port = port or free_port()
    data = root / f"node-{node_id}"
    data.mkdir(exist_ok=True)
    log = data / "serve.log"
    cmd = [sys.executable, "-m", "utjima", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--data-dir", str(data), "--database-url", database_url, "--node-id", node_id,
           "--redis", redis_url, *args]
    if model_dir is not None:
        cmd += ["--model", str(model_dir)]
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    node = Node(node_id, port, proc, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{node.url}/api/leaderboard", timeout=2):
                return node
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"node {node_id} did not start: {node.output()[-1500:]}")


@dataclass
class Cluster:
    url: str  # HAProxy
    redis_url: str
    database_url: str
    haproxy_config: str
    root: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    model_dir: Path | None = None
    env: Mapping[str, str] | None = None
    args: tuple[str, ...] = ()

    def stop_node(self, node_id: str, sig: int = signal.SIGTERM,
                  timeout_s: float = 15.0) -> int:
        """Stop one process (SIGTERM: it tells its pages and goes; SIGKILL: it just dies);
        its exit status."""
        proc = self.nodes[node_id].proc
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def start_node(self, node_id: str) -> Node:
        """(Re)start a node on its old port (HAProxy's config names it)."""
        old = self.nodes.get(node_id)
        self.nodes[node_id] = start_node(
            self.root, node_id, redis_url=self.redis_url, database_url=self.database_url,
            model_dir=self.model_dir, env=self.env, args=self.args,
            port=old.port if old else None)
        return self.nodes[node_id]


@contextlib.contextmanager
def running_cluster(n: int = 2, *, model_dir: Path | None = None,
                    env: Mapping[str, str] | None = None,
                    args: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """Redis, PostgreSQL, HAProxy and `n` nodes (ids A, B, ...), all stopped on exit."""
    if not 1 <= n <= len(NODE_IDS):
        raise ValueError(f"n must be in 1..{len(NODE_IDS)}, got {n}")
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="utjima-cluster-")))
        redis_url = stack.enter_context(redis_server(root))
        database_url = stack.enter_context(postgres())
        ports = {node: free_port() for node in NODE_IDS[:n]}
        url, config = stack.enter_context(haproxy(root, ports))
        c = Cluster(url, redis_url, database_url, config, root, model_dir=model_dir, env=env,
                    args=args)

        def stop_all() -> None:
            for node in c.nodes.values():
                if node.proc.poll() is None:
                    stop_process(node.proc)

        stack.callback(stop_all)
        for node, port in ports.items():
            c.nodes[node] = start_node(root, node, redis_url=redis_url,
                                       database_url=database_url, model_dir=model_dir,
                                       env=env, args=args, port=port)
        yield c
