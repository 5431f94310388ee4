"""PhantomDB's PostgreSQL-protocol server vs PostgreSQL 15, over the wire with psycopg.

Starts `phantomdb serve` and a PostgreSQL 15 server (initdb into the work directory) on
loopback, loads the same key-value table into both, and runs from worker processes:

* point lookups: `SELECT v FROM kv WHERE id = $1` (prepared, autocommit);
* single-row inserts: `INSERT INTO kv_ins VALUES ($1, $2)` (prepared, autocommit: one
  durable commit each);

at 1 and 16 clients. Durability is equal on both sides: PostgreSQL runs with fsync=on and
synchronous_commit=on (its defaults); PhantomDB's redb commits are durable (fsync) when
COMMIT returns. Prints throughput and the PhantomDB/PostgreSQL ratio (higher is better).

    bench/.venv/bin/python bench/wire.py [--seconds 5] [--clients 1,16]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def phantomdb_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "phantomdb"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--release", "--workspace"], cwd=ROOT, check=True)
    return binary


def pg_bin(name: str) -> str:
    for d in ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    raise RuntimeError(f"PostgreSQL's {name} not found (Debian: apt-get install postgresql-15)")


class PhantomServer:
    name = "phantomdb"

    def __init__(self, work: Path):
        binary = phantomdb_binary()
        db = work / "wire.db"
        subprocess.run([str(binary), str(db), "-c",
                        f"CREATE ROLE bench LOGIN SUPERUSER PASSWORD '{PASSWORD}'"],
                       check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.proc = subprocess.Popen([str(binary), "serve", str(db), "--listen",
                                      f"127.0.0.1:{self.port}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.port, self.proc)
        self.version = subprocess.run([str(binary), "--version"], capture_output=True,
                                      text=True).stdout.strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--"] + cmd


class PostgresServer:
    name = "postgresql"

    def __init__(self, work: Path):
        self.dir = work / "pg"
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.data = self.dir / "data"
        pwfile = self.dir / "pgpass"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        subprocess.run(as_postgres_user([pg_bin("initdb"), "-D", str(self.data), "-U", "bench",
                                         "--auth=scram-sha-256", f"--pwfile={pwfile}"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        subprocess.run(as_postgres_user([
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"),
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                  " -c fsync=on -c synchronous_commit=on -c max_connections=100",
            "start"]), check=True, stdout=subprocess.DEVNULL)
        wait_for(self.port)
        self.version = subprocess.run([pg_bin("postgres"), "--version"], capture_output=True,
                                      text=True).stdout.strip()

    def stop(self) -> None:
        subprocess.run(as_postgres_user([pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast",
                                         "stop"]), check=False, stdout=subprocess.DEVNULL)


def dsn(port: int) -> str:
    return f"host=127.0.0.1 port={port} user=bench password={PASSWORD} dbname=postgres"


def load(port: int, rows: int) -> None:
    with psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS kv")
        conn.execute("DROP TABLE IF EXISTS kv_ins")
        conn.execute("CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT NOT NULL)")
        conn.execute("CREATE TABLE kv_ins (id BIGINT PRIMARY KEY, v TEXT NOT NULL)")
        with conn.cursor() as cur:
            with cur.copy("COPY kv (id, v) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((i, f"value-{i}"))


def worker(task: tuple[str, int, int, int, int, float]) -> int:
    kind, port, clients, worker_no, rows, seconds = task
    rng = random.Random(worker_no)
    done = 0
    with psycopg.connect(dsn(port), autocommit=True, prepare_threshold=0) as conn:
        with conn.cursor() as cur:
            deadline = time.perf_counter() + seconds
            # Distinct keys for every worker of every run.
            next_id = (clients * 1_000 + worker_no) * 10_000_000
            while time.perf_counter() < deadline:
                for _ in range(50):
                    if kind == "lookup":
                        key = rng.randrange(rows)
                        cur.execute("SELECT v FROM kv WHERE id = %s", (key,))
                        row = cur.fetchone()
                        if row is None or row[0] != f"value-{key}":
                            raise RuntimeError(f"wrong row for {key}: {row}")
                    else:
                        cur.execute("INSERT INTO kv_ins VALUES (%s, %s)", (next_id, "x"))
                        next_id += 1
                    done += 1
    return done


def measure(kind: str, port: int, clients: int, rows: int, seconds: float) -> float:
    tasks = [(kind, port, clients, w, rows, seconds) for w in range(clients)]
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(clients) as pool:
        counts = pool.map(worker, tasks)
    elapsed = max(time.perf_counter() - start, seconds)
    return sum(counts) / seconds if elapsed else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--clients", default="1,16")
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="phantomdb-wire-"))
    work.mkdir(parents=True, exist_ok=True)

    servers = []
    try:
        servers.append(PhantomServer(work))
        servers.append(PostgresServer(work))
        results: dict[tuple[str, int], dict[str, float]] = {}
        for server in servers:
            load(server.port, args.rows)
        for kind in ("lookup", "insert"):
            for n in clients:
                for server in servers:
                    ops = measure(kind, server.port, n, args.rows, args.seconds)
                    results.setdefault((kind, n), {})[server.name] = ops
                    print(f"{kind:7} {n:3} clients {server.name:11} {ops:10.0f} ops/s", file=sys.stderr)
        print(f"\n{servers[0].version} vs {servers[1].version}; {args.rows} rows, {args.seconds:g} s per cell; psycopg {psycopg.__version__}\n")
        print("| workload | clients | PhantomDB ops/s | PostgreSQL ops/s | PhantomDB / PostgreSQL |")
        print("|---|---:|---:|---:|---:|")
        for (kind, n), r in results.items():
            ratio = r["phantomdb"] / r["postgresql"] if r.get("postgresql") else float("nan")
            label = "point lookup" if kind == "lookup" else "single-row insert"
            print(f"| {label} | {n} | {r['phantomdb']:.0f} | {r['postgresql']:.0f} | {ratio:.2f}x |")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
