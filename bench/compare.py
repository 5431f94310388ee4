#!/usr/bin/env python3
"""Runs the same workloads on PhantomDB, DuckDB and SQLite and prints a markdown table.

Workloads (see bench/README.md):
  tpch   TPC-H data from tpchgen-cli (CSV), load time and the 22 queries
  point  primary-key lookups and single-row inserts in one transaction
  udf    is_prime(x) over N rows: PhantomDB plugin and built-in, DuckDB arrow UDF,
         SQLite Python UDF

In TPC-H, "PhantomDB + advanced_optimizer" is the same PhantomDB process and database file
with the join-order optimizer plugin switched on (`SET advanced_optimizer.enabled`) for its
queries and off for the plain PhantomDB ones; both answers are checked against DuckDB's.

The systems alternate within each step (warm-up first, then --runs timed runs, the order of
systems rotating every run); figures are medians. PhantomDB runs in `phantomdb-bench serve`,
a subprocess that times each operation itself, so process start-up is not in the figures.

  python bench/compare.py --smoke             # tiny data, one run (CI)
  python bench/compare.py --release --sf 1    # the reported figures
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
QUERIES = BENCH / "tpch" / "queries"
SCHEMA = BENCH / "tpch" / "schema.sql"
TABLES = ["region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem"]
SYSTEMS = ["phantomdb", "duckdb", "sqlite"]
LABEL = {"phantomdb": "PhantomDB", "duckdb": "DuckDB", "sqlite": "SQLite",
         "phantomdb_ao": "PhantomDB + advanced_optimizer"}


class BenchError(Exception):
    pass


class Timeout(BenchError):
    pass


def storage_runs(args) -> int:
    """Timed runs of the storage-boundary scans: at least 9 (a full scan is ~20 ms, and a
    ratio of two medians of 3 moved by up to 15% between runs)."""
    return max(args.runs, 9)


# Every workload, in the order they run.
ALL_WORKLOADS = ("tpch", "point", "udf", "storage")

def is_prime(n: int) -> bool:
    """Same trial division as the PhantomDB plugin and built-in."""
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0 or n % 3 == 0:
        return False
    i = 5
    while i * i <= n:
        if n % i == 0 or n % (i + 2) == 0:
            return False
        i += 6
    return True


def is_prime_arrow(xs: pa.Array) -> pa.Array:
    """DuckDB vectorized (arrow) UDF: one call per batch; the per-row test runs in Python."""
    return pa.array([None if x is None else is_prime(x) for x in xs.to_pylist()], type=pa.bool_())


def schema_statements() -> list[str]:
    text = "\n".join(l for l in SCHEMA.read_text().splitlines() if not l.startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def sqlite_dialect(sql: str) -> str:
    """The TPC-H texts in SQLite's dialect (dates are ISO text there)."""
    sql = re.sub(r"date\s+'(\d{4}-\d{2}-\d{2})'", r"'\1'", sql)
    sql = re.sub(r"extract\(year from (\w+)\)", r"cast(strftime('%Y', \1) as integer)", sql)
    sql = re.sub(r"substring\((\w+) from (\d+) for (\d+)\)", r"substr(\1, \2, \3)", sql)
    return sql


# --------------------------------------------------------------------------------------------
# Systems


class PhantomDB:
    name = "phantomdb"

    def __init__(self, exe: Path, plugin: Path, log: Path, optimizer: Path | None = None):
        self.plugin = plugin
        self.optimizer = optimizer
        # Whether the optimizer plugin is loaded into the open database, and switched on.
        self.optimizer_loaded = False
        self.optimizer_on = False
        self.log = open(log, "a")
        self.proc = subprocess.Popen(
            [str(exe), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, bufsize=1,
        )
        v = self.call(cmd="version")
        self.version = f"{v['phantomdb']} (DataFusion {v['datafusion']}, {v['profile']} build)"

    def call(self, **cmd):
        assert self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise BenchError(f"phantomdb-bench exited (status {self.proc.poll()}); see {self.log.name}")
        reply = json.loads(line)
        if not reply.get("ok"):
            err = reply.get("error", "?")
            if err.startswith("timeout"):
                raise Timeout(err)
            raise BenchError(err)
        return reply

    def open(self, path: Path):
        self.call(cmd="open", path=str(path))
        self.optimizer_loaded = self.optimizer_on = False

    def use_optimizer(self, on: bool):
        """Switches the advanced_optimizer plugin on or off for the next statements (loading
        it into the open database first); untimed."""
        if not on and not self.optimizer_loaded:
            return
        if not self.optimizer_loaded:
            if self.optimizer is None:
                raise BenchError("the advanced_optimizer plugin library was not built")
            self.call(cmd="load_plugin", path=str(self.optimizer))
            self.optimizer_loaded = True
            self.optimizer_on = True
        if on != self.optimizer_on:
            self.call(cmd="exec", sql=f"SET advanced_optimizer.enabled = {'on' if on else 'off'}")
            self.optimizer_on = on

    def query(self, sql: str, timeout: float | None = None):
        self.use_optimizer(False)
        r = self.call(cmd="exec", sql=sql, timeout=timeout)
        return r["secs"], r["rows"]

    def answer(self, sql: str, timeout: float | None = None) -> list:
        """The result rows (values as text), untimed, to check against DuckDB's."""
        self.use_optimizer(False)
        return self.call(cmd="exec", sql=sql, timeout=timeout, fetch=True)["values"]

    def peak_rss(self) -> int | None:
        """Peak resident memory of the phantomdb-bench process so far, bytes."""
        return peak_rss_of(f"/proc/{self.proc.pid}/status")

    def load_tpch(self, csv_dir: Path) -> float:
        start = time.perf_counter()
        for stmt in schema_statements():
            self.call(cmd="exec", sql=stmt)
        for t in TABLES:
            # One COPY per file: COPY FROM holds a whole file in memory (DIAGNOSIS round 6).
            for f in table_files(csv_dir, t):
                self.call(cmd="exec", sql=f"COPY {t} FROM '{f}'")
        return time.perf_counter() - start

    def storage_boundary(self, rows: int, runs: int, workdir: Path) -> dict:
        if STORAGE_PLUGIN[0] is None:
            raise BenchError("the s3_storage plugin library was not built")
        d = workdir / "storage-boundary"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return self.call(cmd="storage_boundary", plugin=str(STORAGE_PLUGIN[0]), dir=str(d),
                         rows=rows, runs=runs)["timings"]

    def make_kv(self, rows: int):
        self.call(cmd="exec", sql="CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT, n DOUBLE)")
        self.call(cmd="exec", sql=f"INSERT INTO kv SELECT value, 'row ' || value, value + 0.5 "
                                  f"FROM generate_series(1, {rows})")

    def lookups(self, n: int, max_key: int, seed: int) -> float:
        r = self.call(cmd="lookups", table="kv", key="id", n=n, max_key=max_key, seed=seed,
                      prepared=True)
        if r["found"] != n:
            raise BenchError(f"lookups found {r['found']} of {n}")
        return r["secs"]

    def inserts(self, n: int) -> float:
        self.call(cmd="exec", sql="DROP TABLE IF EXISTS ins")
        self.call(cmd="exec", sql="CREATE TABLE ins (id BIGINT PRIMARY KEY, v TEXT, n DOUBLE)")
        # A prepared INSERT, EXECUTEd once per row (as DuckDB and SQLite get prepared statements).
        return self.call(cmd="inserts", table="ins", n=n, start=1, prepared=True)["secs"]

    def make_nums(self, rows: int):
        self.call(cmd="exec", sql=f"CREATE TABLE nums AS SELECT value AS x FROM generate_series(1, {rows})")
        self.call(cmd="load_plugin", path=str(self.plugin))
        self.call(cmd="register_builtin")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call(cmd="quit")
            except BenchError:
                pass
            self.proc.wait(timeout=60)
        self.log.close()


class PhantomDBOptimized:
    """The PhantomDB process and TPC-H database of `base`, with the advanced_optimizer
    plugin switched on for each query (it loads and opens nothing of its own)."""

    name = "phantomdb_ao"

    def __init__(self, base: PhantomDB):
        self.base = base

    def query(self, sql: str, timeout: float | None = None):
        self.base.use_optimizer(True)
        r = self.base.call(cmd="exec", sql=sql, timeout=timeout)
        return r["secs"], r["rows"]

    def answer(self, sql: str, timeout: float | None = None) -> list:
        self.base.use_optimizer(True)
        return self.base.call(cmd="exec", sql=sql, timeout=timeout, fetch=True)["values"]

    def reordered(self, sql: str) -> bool:
        """Whether the plugin changed the query's plan (EXPLAIN's `query_processors` row)."""
        self.base.use_optimizer(True)
        rows = self.base.call(cmd="exec", sql="EXPLAIN " + sql, fetch=True)["values"]
        return any("changed by: advanced_optimizer" in str(v) for row in rows for v in row)


class DuckDB:
    name = "duckdb"
    version = duckdb.__version__

    def __init__(self):
        self.con = None

    def open(self, path: Path):
        self.close()
        self.con = duckdb.connect(str(path))

    def query(self, sql: str, timeout: float | None = None):
        timer = threading.Timer(timeout, self.con.interrupt) if timeout else None
        start = time.perf_counter()
        if timer:
            timer.start()
        try:
            rows = len(self.con.execute(sql).fetchall())
        except duckdb.InterruptException as e:
            raise Timeout(f"timeout after {timeout}s") from e
        except duckdb.Error as e:
            raise BenchError(str(e)) from e
        finally:
            if timer:
                timer.cancel()
        return time.perf_counter() - start, rows

    def answer(self, sql: str, timeout: float | None = None) -> list:
        return self.con.execute(sql).fetchall()

    def peak_rss(self) -> int | None:
        """Peak resident memory of this Python process (DuckDB runs in it, and SQLite)."""
        return peak_rss_of("/proc/self/status")

    def load_tpch(self, csv_dir: Path) -> float:
        start = time.perf_counter()
        for stmt in schema_statements():
            self.con.execute(stmt)
        for t in TABLES:
            files = table_files(csv_dir, t)
            source = files[0] if len(files) == 1 else files[0].parent / "*.csv"
            self.con.execute(f"COPY {t} FROM '{source}' (HEADER)")
        self.con.execute("CHECKPOINT")
        return time.perf_counter() - start

    def make_kv(self, rows: int):
        self.con.execute("CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT, n DOUBLE)")
        self.con.execute(f"INSERT INTO kv SELECT i, 'row ' || i, i + 0.5 FROM range(1, {rows + 1}) t(i)")

    def lookups(self, n: int, max_key: int, seed: int) -> float:
        rng = random.Random(seed)
        keys = [rng.randint(1, max_key) for _ in range(n)]
        sql = "SELECT * FROM kv WHERE id = ?"
        found = 0
        start = time.perf_counter()
        for k in keys:
            found += len(self.con.execute(sql, [k]).fetchall())
        secs = time.perf_counter() - start
        if found != n:
            raise BenchError(f"lookups found {found} of {n}")
        return secs

    def inserts(self, n: int) -> float:
        self.con.execute("DROP TABLE IF EXISTS ins")
        self.con.execute("CREATE TABLE ins (id BIGINT PRIMARY KEY, v TEXT, n DOUBLE)")
        sql = "INSERT INTO ins VALUES (?, ?, ?)"
        start = time.perf_counter()
        self.con.execute("BEGIN")
        for i in range(1, n + 1):
            self.con.execute(sql, [i, f"row {i}", i + 0.5])
        self.con.execute("COMMIT")
        return time.perf_counter() - start

    def make_nums(self, rows: int):
        self.con.execute(f"CREATE TABLE nums AS SELECT i AS x FROM range(1, {rows + 1}) t(i)")
        self.con.create_function("is_prime", is_prime_arrow, ["BIGINT"], "BOOLEAN", type="arrow")

    def close(self):
        if self.con is not None:
            self.con.close()
            self.con = None


class SQLite:
    name = "sqlite"
    version = sqlite3.sqlite_version

    def __init__(self):
        self.con = None
        self.deadline = None

    def open(self, path: Path):
        self.close()
        self.con = sqlite3.connect(str(path), isolation_level=None)
        self.con.set_progress_handler(self._progress, 100_000)

    def _progress(self):
        return 1 if self.deadline is not None and time.perf_counter() > self.deadline else 0

    def query(self, sql: str, timeout: float | None = None):
        start = time.perf_counter()
        self.deadline = start + timeout if timeout else None
        try:
            rows = len(self.con.execute(sqlite_dialect(sql)).fetchall())
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise Timeout(f"timeout after {timeout}s") from e
            raise BenchError(str(e)) from e
        finally:
            self.deadline = None
        return time.perf_counter() - start, rows

    def load_tpch(self, csv_dir: Path) -> float:
        start = time.perf_counter()
        for stmt in schema_statements():
            self.con.execute(stmt)
        self.con.execute("BEGIN")
        for t in TABLES:
            for path in table_files(csv_dir, t):
                with open(path, newline="") as f:
                    reader = csv.reader(f)
                    header = next(reader)
                    marks = ", ".join("?" * len(header))
                    self.con.executemany(f"INSERT INTO {t} VALUES ({marks})", reader)
        self.con.execute("COMMIT")
        return time.perf_counter() - start

    def make_kv(self, rows: int):
        self.con.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT, n DOUBLE)")
        self.con.execute(f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) "
                         "INSERT INTO kv SELECT i, 'row ' || i, i + 0.5 FROM c")

    def lookups(self, n: int, max_key: int, seed: int) -> float:
        rng = random.Random(seed)
        keys = [rng.randint(1, max_key) for _ in range(n)]
        sql = "SELECT * FROM kv WHERE id = ?"  # sqlite3 keeps it prepared in its statement cache
        execute = self.con.execute
        found = 0
        start = time.perf_counter()
        for k in keys:
            found += len(execute(sql, (k,)).fetchall())
        secs = time.perf_counter() - start
        if found != n:
            raise BenchError(f"lookups found {found} of {n}")
        return secs

    def inserts(self, n: int) -> float:
        self.con.execute("DROP TABLE IF EXISTS ins")
        self.con.execute("CREATE TABLE ins (id INTEGER PRIMARY KEY, v TEXT, n DOUBLE)")
        sql = "INSERT INTO ins VALUES (?, ?, ?)"
        execute = self.con.execute
        start = time.perf_counter()
        execute("BEGIN")
        for i in range(1, n + 1):
            execute(sql, (i, f"row {i}", i + 0.5))
        execute("COMMIT")
        return time.perf_counter() - start

    def make_nums(self, rows: int):
        self.con.execute(f"CREATE TABLE nums AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
                         f"SELECT x + 1 FROM c WHERE x < {rows}) SELECT x FROM c")
        self.con.create_function("is_prime", 1, is_prime, deterministic=True)

    def close(self):
        if self.con is not None:
            self.con.close()
            self.con = None


# --------------------------------------------------------------------------------------------
# Helpers


def cargo_artifacts(cmd: list[str]) -> tuple[Path | None, Path | None]:
    """Runs a cargo build command; returns the phantomdb-bench binary and the math_functions
    library it reports (and remembers the s3_storage library in STORAGE_PLUGIN)."""
    print("building:", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd + ["--message-format=json-render-diagnostics"], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise SystemExit("cargo build failed")
    exe = plugin = None
    for line in out.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or msg["profile"].get("test"):
            continue
        name = msg["target"]["name"]
        if name == "phantomdb-bench" and msg.get("executable"):
            exe = Path(msg["executable"])
        elif name == "math_functions":
            libs = [Path(f) for f in msg["filenames"] if f.endswith((".so", ".dylib", ".dll"))]
            plugin = libs[0] if libs else plugin
        elif name == "s3_storage":
            libs = [Path(f) for f in msg["filenames"] if f.endswith((".so", ".dylib", ".dll"))]
            if libs:
                STORAGE_PLUGIN[0] = libs[0]
        elif name == "advanced_optimizer":
            libs = [Path(f) for f in msg["filenames"] if f.endswith((".so", ".dylib", ".dll"))]
            if libs:
                OPTIMIZER_PLUGIN[0] = libs[0]
    return exe, plugin


STORAGE_PLUGIN: list[Path | None] = [None]
STARTED_LOADAVG: list[str] = ["n/a"]
OPTIMIZER_PLUGIN: list[Path | None] = [None]


def build_phantomdb(release: bool) -> tuple[Path, Path]:
    """Builds phantomdb-bench and the plugins; returns the bench binary and math_functions.

    Always the whole workspace with the release profile, as the README's commands
    (`scripts/phantomdb`, `cargo test --workspace --release`) build it: one feature set and
    one profile, so after either of them nothing is compiled again. (`--release` is kept
    for old command lines; it changes nothing.)"""
    del release
    exe, plugin = cargo_artifacts(["cargo", "build", "--release", "--workspace"])
    if exe is None or plugin is None:
        raise SystemExit("cargo did not report the phantomdb-bench binary and the math_functions library")
    return exe, plugin


def prebuilt_phantomdb(bench_exe: Path | None) -> tuple[Path, Path | None]:
    """phantomdb-bench and math_functions without building (`--no-build`): the plugin
    libraries are looked up beside the binary (and remembered like cargo's artifacts)."""
    if bench_exe is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        bench_exe = target / "release" / "phantomdb-bench"
    exe = bench_exe.resolve()
    if not exe.exists():
        raise SystemExit(f"{exe} does not exist (build it, or pass --bench-exe)")
    found = {}
    for name in ("math_functions", "s3_storage", "advanced_optimizer"):
        lib = next((exe.parent / f"{pre}{name}{ext}" for pre in ("lib", "")
                    for ext in (".so", ".dylib", ".dll") if (exe.parent / f"{pre}{name}{ext}").exists()), None)
        found[name] = lib
    STORAGE_PLUGIN[0] = found["s3_storage"]
    OPTIMIZER_PLUGIN[0] = found["advanced_optimizer"]
    return exe, found["math_functions"]


def generate_tpch(sf: float, work: Path, parts: int = 1) -> Path:
    """The CSV directory of scale factor `sf`: `<table>.csv` files, or with `parts` > 1
    `<table>/<table>.<i>.csv` (each with its header line)."""
    out = work / f"tpch-sf{sf:g}" / ("csv" if parts == 1 else f"csv-{parts}parts")
    if all(table_files(out, t) for t in TABLES):
        return out
    out.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    print(f"generating TPC-H SF{sf:g} with tpchgen-cli ...", file=sys.stderr)
    cmd = [exe, "csv", "-s", f"{sf:g}", "-o", str(out), "--overwrite"]
    if parts > 1:
        cmd += ["--parts", str(parts)]
    subprocess.run(cmd, check=True)
    return out


def table_files(csv_dir: Path, table: str) -> list[Path]:
    """The CSV files of a table, in part order (empty when not generated)."""
    whole = csv_dir / f"{table}.csv"
    if whole.exists():
        return [whole]
    return sorted((csv_dir / table).glob(f"{table}.*.csv"), key=lambda p: int(p.suffixes[0][1:]))


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def fmt_ms(secs):
    if secs is None:
        return "n/a"
    ms = secs * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.3f}"


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}x"


def ratio(a, b):
    return a / b if a is not None and b else None


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{socket.gethostname()}: {cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


# --------------------------------------------------------------------------------------------
# Answers


def peak_rss_of(status: str) -> int | None:
    try:
        for line in open(status):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared with builds)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def files_size(path: Path) -> int:
    """Bytes on disk of a database file and its companions (`-wal`, `.wal`, ...)."""
    total = 0
    for f in path.parent.glob(path.name + "*"):
        try:
            total += f.stat().st_blocks * 512
        except OSError:
            pass
    return total


NUMBER = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$")


def normalize(v):
    """A value as a float, a string or None, whichever system produced it."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)) or type(v).__name__ == "Decimal":
        return float(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    v = str(v).rstrip()
    return float(v) if NUMBER.match(v) else v


def same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        # TPC-H answers are rounded to cents; averages differ in the last digits.
        return abs(a - b) <= 0.01 + 1e-6 * abs(b)
    return a == b


def answer_difference(ours: list, theirs: list) -> str | None:
    """Why two results differ (None if they agree): same rows, numbers within rounding, in
    order, or in any order (ties of an ORDER BY may come out either way)."""
    ours = [tuple(normalize(v) for v in row) for row in ours]
    theirs = [tuple(normalize(v) for v in row) for row in theirs]
    if len(ours) != len(theirs):
        return f"{len(ours)} rows, DuckDB {len(theirs)}"

    def rows_agree(a, b):
        return len(a) == len(b) and all(map(same_value, a, b))

    if all(map(rows_agree, ours, theirs)):
        return None

    def key(row):
        return tuple((0, round(v, 1), "") if isinstance(v, float) else (1, 0.0, str(v)) for v in row)

    for a, b in zip(sorted(ours, key=key), sorted(theirs, key=key)):
        if not rows_agree(a, b):
            return f"row {a} vs DuckDB {b}"
    return None


# The run


class Runner:
    def __init__(self, args, systems, work: Path, progress: tqdm, tpch_extra=()):
        self.args = args
        self.systems = systems
        # Variants timed in TPC-H only, sharing a system's process and database.
        self.tpch_extra = list(tpch_extra)
        self.work = work
        self.bar = progress
        self.notes: list[str] = []
        self.checked = 0
        # TPC-H: each system's database file, and what was measured right after the load.
        self.db_files: dict[str, Path] = {}
        self.after_load: dict = {}

    def order(self, run: int, systems=None):
        systems = self.systems if systems is None else systems
        k = run % len(systems)
        return systems[k:] + systems[:k]

    def db_path(self, sysname: str, workload: str) -> Path:
        ext = {"phantomdb": "phantomdb", "duckdb": "duckdb", "sqlite": "sqlite"}[sysname]
        p = self.work / "db" / f"{workload}.{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        for f in p.parent.glob(p.name + "*"):
            f.unlink()
        return p

    def loaded_db(self, sysname: str, workload: str) -> Path | None:
        """The database file of an earlier run (`--reuse-load`), if there is one."""
        ext = {"phantomdb": "phantomdb", "duckdb": "duckdb", "sqlite": "sqlite"}[sysname]
        p = self.work / "db" / f"{workload}.{ext}"
        return p if p.exists() else None

    def step(self, desc: str):
        self.bar.set_description(desc)
        self.bar.update(1)

    def timed(self, label, fn_by_system, runs, warmup, systems=None):
        """Alternates the systems over warm-up + runs; returns {system: [secs] or error}."""
        systems = self.systems if systems is None else systems
        res = {s.name: [] for s in systems}
        failed = {}
        for r in range(warmup + runs):
            for s in self.order(r, systems):
                self.step(f"{label} {LABEL[s.name]} {'warm-up' if r < warmup else f'run {r - warmup + 1}'}")
                if s.name in failed:
                    continue
                try:
                    secs = fn_by_system(s)
                except BenchError as e:
                    failed[s.name] = f"timeout" if isinstance(e, Timeout) else f"error: {str(e).splitlines()[0][:120]}"
                    continue
                if r >= warmup:
                    res[s.name].append(secs)
        for k, v in failed.items():
            res[k] = v
        return res

    # TPC-H -------------------------------------------------------------------------------------
    def tpch(self, csv_dir: Path):
        a = self.args
        load = {s.name: [] for s in self.systems}
        for r in range(a.load_runs):
            for s in self.order(r):
                self.step(f"TPC-H load {LABEL[s.name]}")
                if a.reuse_load and r == 0 and self.loaded_db(s.name, "tpch"):
                    # The database a previous run loaded from the same data: no load time.
                    path = self.loaded_db(s.name, "tpch")
                    s.open(path)
                    self.db_files[s.name] = path
                    continue
                path = self.db_path(s.name, "tpch")
                s.open(path)
                load[s.name].append(s.load_tpch(csv_dir))
                self.db_files[s.name] = path
        self.after_load = {"loadavg": load_average(),
                           "rss": {s.name: s.peak_rss() for s in self.systems if hasattr(s, "peak_rss")},
                           "size": {n: files_size(p) for n, p in self.db_files.items()}}
        rows = {}
        results = {}
        systems = self.systems + self.tpch_extra
        self.reordered = []
        for q in sorted(QUERIES.glob("q*.sql")):
            sql = q.read_text()
            qname = q.stem
            rows[qname] = {}

            def run(s, sql=sql, qname=qname):
                secs, n = s.query(sql, a.timeout)
                rows[qname][s.name] = n
                return secs

            results[qname] = self.timed(f"TPC-H {qname}", run, a.runs, a.warmup, systems)
            for s in systems:
                if s.name.startswith("phantomdb"):
                    self.check_answer(qname, sql, results[qname], s)
            for s in self.tpch_extra:
                if isinstance(results[qname].get(s.name), list) and s.reordered(sql):
                    self.reordered.append(qname)
        rss = {s.name: s.peak_rss() for s in self.systems if hasattr(s, "peak_rss")}
        return load, results, rows, rss

    def check_answer(self, qname: str, sql: str, res: dict, ours_system):
        """Compares a PhantomDB variant's answer with DuckDB's (untimed); a wrong answer
        fails the query."""
        name = ours_system.name
        duck = next((s for s in self.systems if s.name == "duckdb"), None)
        if duck is None or not all(isinstance(res.get(n), list) for n in (name, "duckdb")):
            return
        try:
            ours = ours_system.answer(sql, self.args.timeout)
            theirs = duck.answer(sql, self.args.timeout)
        except BenchError as e:
            res[name] = f"error checking the answer: {str(e).splitlines()[0][:120]}"
            return
        why = answer_difference(ours, theirs)
        if why is not None:
            res[name] = f"wrong answer ({why[:160]})"
            self.notes.append(f"{qname} ({LABEL[name]}): wrong answer ({why})")
        else:
            self.checked += 1

    # Point operations ----------------------------------------------------------------------------
    def point(self):
        a = self.args
        for s in self.systems:
            self.step(f"point setup {LABEL[s.name]}")
            s.open(self.db_path(s.name, "point"))
            s.make_kv(a.kv_rows)
        seeds = iter(range(1, 10_000))
        lookups = self.timed("PK lookups", lambda s: s.lookups(a.lookups, a.kv_rows, next(seeds)), a.runs, a.warmup)
        inserts = self.timed("inserts", lambda s: s.inserts(a.inserts), a.runs, a.warmup)
        return lookups, inserts

    # Storage plugin boundary ----------------------------------------------------------------------
    def storage(self):
        a = self.args
        pdb = next((s for s in self.systems if s.name == "phantomdb"), None)
        if pdb is None:
            return None
        self.step("storage boundary (s3_storage plugin vs linked in)")
        return pdb.storage_boundary(a.storage_rows, storage_runs(a), self.work)

    # UDF ---------------------------------------------------------------------------------------
    def udf(self):
        a = self.args
        for s in self.systems:
            self.step(f"UDF setup {LABEL[s.name]}")
            s.open(self.db_path(s.name, "udf"))
            s.make_nums(a.udf_rows)
        variants = []
        for s in self.systems:
            if s.name == "phantomdb":
                variants += [("PhantomDB native plugin", s, "is_prime"),
                             ("PhantomDB built-in", s, "is_prime_builtin")]
            elif s.name == "duckdb":
                variants.append(("DuckDB Python UDF (arrow)", s, "is_prime"))
            else:
                variants.append(("SQLite Python UDF", s, "is_prime"))
        res = {v[0]: [] for v in variants}
        for r in range(a.warmup + a.runs):
            k = r % len(variants)
            for label, s, fn in variants[k:] + variants[:k]:
                self.step(f"UDF {label} {'warm-up' if r < a.warmup else f'run {r - a.warmup + 1}'}")
                if isinstance(res[label], str):
                    continue
                try:
                    secs, _ = s.query(f"SELECT count(*) FROM nums WHERE {fn}(x)", a.timeout)
                except BenchError as e:
                    res[label] = "timeout" if isinstance(e, Timeout) else f"error: {e}"
                    continue
                if r >= a.warmup:
                    res[label].append(secs)
        return res


def steps_total(args, nsys):
    n = 0
    if "tpch" in args.workloads:
        extra = 1 if "phantomdb" in args.systems and not args.no_optimizer else 0
        n += args.load_runs * nsys + 22 * (args.warmup + args.runs) * (nsys + extra)
    if "point" in args.workloads:
        n += nsys + 2 * (args.warmup + args.runs) * nsys
    if "udf" in args.workloads:
        variants = nsys + (1 if "phantomdb" in args.systems else 0)
        n += nsys + (args.warmup + args.runs) * variants
    if "storage" in args.workloads and "phantomdb" in args.systems:
        n += 1
    return n


def cell(v, fmt=fmt_ms):
    if isinstance(v, str):
        return v
    return fmt(median(v))


def med(v):
    return None if isinstance(v, str) else median(v)


def optimizer_report(results: dict, reordered: list[str], out: list[str], checks: list):
    """The TPC-H runs with and without the advanced_optimizer plugin, side by side."""
    out.append("### With the advanced_optimizer plugin\n")
    out.append("Same process and database file; the plugin (a query processor loaded from its "
               "cdylib) reorders inner joins from the tables' statistics when switched on. "
               "\"Plan changed\": EXPLAIN names the plugin among the processors that changed the plan.\n")
    out.append("| | PhantomDB (ms) | + advanced_optimizer (ms) | with / without | plan changed |")
    out.append("| --- | --- | --- | --- | --- |")
    ratios = []
    for q, res in results.items():
        off, on = med(res.get("phantomdb", "n/a")), med(res.get("phantomdb_ao", "n/a"))
        r = ratio(on, off) if on and off else None
        if r is not None:
            ratios.append((q, r))
        out.append(f"| {q} | {cell(res.get('phantomdb', 'n/a'))} | {cell(res.get('phantomdb_ao', 'n/a'))} | "
                   f"{fmt_ratio(r)} | {'yes' if q in reordered else ''} |")
    g_off = geomean([med(r["phantomdb"]) for r in results.values() if med(r.get("phantomdb", "n/a"))])
    g_on = geomean([med(r["phantomdb_ao"]) for r in results.values() if med(r.get("phantomdb_ao", "n/a"))])
    out.append(f"| geomean | {fmt_ms(g_off) if g_off else 'n/a'} | {fmt_ms(g_on) if g_on else 'n/a'} | "
               f"{fmt_ratio(ratio(g_on, g_off) if g_on and g_off else None)} | {len(reordered)} of {len(results)} |")
    out.append("")
    wrong = [q for q, res in results.items() if str(res.get("phantomdb_ao", "")).startswith("wrong answer")]
    out.append(f"- Answers with the plugin compared with DuckDB's: {len(wrong)} wrong"
               + (f" ({', '.join(wrong)})" if wrong else ""))
    worst = max(ratios, key=lambda x: x[1]) if ratios else None
    if worst:
        out.append(f"- Slowest relative to without: {worst[0]} at {fmt_ratio(worst[1])}")
    out.append("")
    checks.append(("advanced_optimizer: answers equal DuckDB's", not wrong, f"{len(wrong)} wrong"))
    checks.append(("advanced_optimizer: plan changed on ≥ 5 of 22 queries", len(reordered) >= 5,
                   f"{len(reordered)} ({', '.join(reordered)})"))
    checks.append(("advanced_optimizer: no query > 1.1x slower", worst is not None and worst[1] <= 1.1,
                   f"{worst[0]} {fmt_ratio(worst[1])}" if worst else "n/a"))


def report(args, versions, tpch, point, udf, storage=None, reordered=None,
           tpch_after_load=None) -> tuple[str, list[str]]:
    names = [s for s in SYSTEMS if s in args.systems]
    out = []
    checks = []
    out.append(f"# PhantomDB vs DuckDB vs SQLite: {dt.date.today().isoformat()}\n")
    out.append(f"- Machine: {machine()}")
    out.append("- Versions: " + "; ".join(f"{LABEL[k]} {v}" for k, v in versions.items())
               + f"; Python {platform.python_version()}")
    out.append(f"- Command: `python bench/compare.py {' '.join(sys.argv[1:])}`")
    out.append(f"- Load average (1/5/15 min) at the start: {STARTED_LOADAVG[0]} (the machine may be "
               "shared with builds; ratios are side by side in one run)")
    out.append(f"- Method: {args.warmup} warm-up + {args.runs} timed run(s) per step, systems alternating "
               f"(order rotated every run); medians. Timeout {args.timeout:g} s per query.\n")

    if tpch:
        load, results, rows, rss = tpch
        out.append(f"## TPC-H SF{args.sf:g}\n")
        out.append("Data from `tpchgen-cli` (CSV); each system loads it into its default storage "
                   "(PhantomDB: redb file, `COPY`; DuckDB: database file, `COPY`; SQLite: database file, "
                   "Python `executemany` in one transaction), same DDL with the TPC-H primary keys.\n")
        hdr = "| | " + " | ".join(f"{LABEL[s]} (ms)" for s in names)
        others = [s for s in names if s != "phantomdb"] if "phantomdb" in names else []
        hdr += "".join(f" | PhantomDB / {LABEL[o]}" for o in others) + " |"
        out.append(hdr)
        out.append("|" + " --- |" * (1 + len(names) + len(others)))
        lm = {s: median(load[s]) for s in names}
        out.append("| load | " + " | ".join(fmt_ms(lm[s]) for s in names)
                   + "".join(f" | {fmt_ratio(ratio(lm['phantomdb'], lm[o]))}" for o in others) + " |")
        missing = {s: [] for s in names}
        for q, res in results.items():
            m = {s: med(res[s]) for s in names}
            for s in names:
                if m[s] is None:
                    missing[s].append(f"{q} ({res[s]})")
            counts = set(rows[q].values())
            flag = "" if len(counts) <= 1 else f" ⚠ rows differ {rows[q]}"
            out.append(f"| {q}{flag} | " + " | ".join(cell(res[s]) for s in names)
                       + "".join(f" | {fmt_ratio(ratio(m['phantomdb'], m[o]))}" for o in others) + " |")
        geo = {}
        for o in others:
            common = [q for q, res in results.items() if med(res["phantomdb"]) and med(res[o])]
            geo[o] = (geomean([ratio(med(results[q]["phantomdb"]), med(results[q][o])) for q in common]), len(common))
        gm = {s: geomean([med(r[s]) for r in results.values() if med(r[s])]) for s in names}
        out.append("| geomean (own queries) | " + " | ".join(fmt_ms(gm[s]) for s in names)
                   + "".join(f" | {fmt_ratio(geo[o][0])} ({geo[o][1]} common)" for o in others) + " |")
        out.append("")
        for s in names:
            if missing[s]:
                out.append(f"- {LABEL[s]} did not complete: {', '.join(missing[s])}")
        wrong = [q for q, res in results.items() if str(res.get("phantomdb", "")).startswith("wrong answer")]
        if "phantomdb" in names and "duckdb" in names:
            out.append(f"- Answers: each query's PhantomDB result compared with DuckDB's (numbers within "
                       f"0.01 + 1e-6 relative, rows in order or, for ties, in any order): "
                       f"{len(wrong)} wrong" + (f" ({', '.join(wrong)})" if wrong else ""))
        rss_label = lambda k: ("Python process (DuckDB" + (", SQLite)" if "sqlite" in names else ")")
                               if k == "duckdb" else LABEL[k])
        after = tpch_after_load or {}
        if after.get("rss"):
            shown = "; ".join(f"{rss_label(k)} {v / 2**30:.2f} GiB" for k, v in after["rss"].items() if v)
            out.append(f"- Peak resident memory (VmHWM) after the load: {shown}")
        if rss:
            shown = "; ".join(f"{rss_label(k)} {v / 2**30:.2f} GiB" for k, v in rss.items() if v)
            out.append(f"- Peak resident memory (VmHWM) at the end of TPC-H (load and queries): {shown}")
        if after.get("size"):
            out.append("- Database file size on disk after the load: " + "; ".join(
                f"{LABEL[k]} {v / 2**30:.2f} GiB" for k, v in after["size"].items()))
        if after.get("loadavg"):
            out.append(f"- Load average (1/5/15 min) after the load: {after['loadavg']}; "
                       f"at the end of TPC-H: {load_average()}")
        out.append("")
        if "duckdb" in others:
            # The targets of issue #18: SF10 from scale factor 10 on, else SF1's.
            big = args.sf >= 10
            checks.append(("TPC-H answers equal DuckDB's", not wrong, f"{len(wrong)} wrong"))
            done = len(results) - len(missing["phantomdb"])
            if big:
                checks.append((f"TPC-H SF{args.sf:g}: all {len(results)} queries complete",
                               not missing["phantomdb"], f"{done} of {len(results)}"))
                peak = (rss or {}).get("phantomdb")
                checks.append((f"TPC-H SF{args.sf:g}: PhantomDB peak memory < 8 GiB",
                               peak is not None and peak < 8 * 2**30,
                               f"{peak / 2**30:.2f} GiB" if peak else "n/a"))
            limit = 1.2 if big else 1.0
            g = geo["duckdb"][0]
            checks.append((f"TPC-H geomean ≤ {limit:.1f}x DuckDB", g is not None and g <= limit, fmt_ratio(g)))
            if not big:
                per_q = [(q, ratio(med(res["phantomdb"]), med(res["duckdb"]))) for q, res in results.items()]
                per_q = [(q, r) for q, r in per_q if r is not None]
                worst_q = max(per_q, key=lambda x: x[1]) if per_q else None
                checks.append(("TPC-H: no query > 2x DuckDB",
                               worst_q is not None and worst_q[1] <= 2.0 and not missing["phantomdb"],
                               f"worst {worst_q[0]} {fmt_ratio(worst_q[1])}" if worst_q else "n/a"))
            lr = ratio(lm["phantomdb"], lm["duckdb"])
            checks.append(("TPC-H load ≤ 1.0x DuckDB", lr is not None and lr <= 1.0, fmt_ratio(lr)))
        if "sqlite" in others:
            g = geo["sqlite"][0]
            checks.append(("TPC-H ≥ 5x faster than SQLite (geomean ≤ 0.2x)", g is not None and g <= 0.2, fmt_ratio(g)))
        if reordered is not None and "phantomdb" in names:
            optimizer_report(results, reordered, out, checks)

    if point:
        lookups, inserts = point
        out.append(f"## Point operations\n")
        out.append(f"Table of {args.kv_rows:,} rows `(id BIGINT PRIMARY KEY, v TEXT, n DOUBLE)`. Lookups: "
                   f"{args.lookups:,} random-key `SELECT * ... WHERE id = ?` per run. Inserts: {args.inserts:,} "
                   "single-row `INSERT` statements in one transaction (BEGIN..COMMIT timed) into an empty table. "
                   "PhantomDB: through `Connection::execute` in Rust, lookups with `PREPARE`/`EXECUTE`, "
                   "inserts with `PREPARE`/`EXECUTE`; DuckDB and SQLite: "
                   "parameterized statements through their Python APIs (their figures include the Python "
                   "call overhead).\n")
        out.append("| | " + " | ".join(LABEL[s] for s in names)
                   + (" | PhantomDB / SQLite" if "phantomdb" in names and "sqlite" in names else "") + " |")
        out.append("|" + " --- |" * (1 + len(names) + (1 if "phantomdb" in names and "sqlite" in names else 0)))
        lat = {s: (med(lookups[s]) / args.lookups if med(lookups[s]) else None) for s in names}
        thr = {s: (args.inserts / med(inserts[s]) if med(inserts[s]) else None) for s in names}
        both = "phantomdb" in names and "sqlite" in names
        out.append("| PK lookup latency (µs) | " + " | ".join(
            (f"{lat[s] * 1e6:.1f}" if lat[s] else str(lookups[s])) for s in names)
            + (f" | {fmt_ratio(ratio(lat['phantomdb'], lat['sqlite']))}" if both else "") + " |")
        out.append("| inserts in one txn (rows/s) | " + " | ".join(
            (f"{thr[s]:,.0f}" if thr[s] else str(inserts[s])) for s in names)
            + (f" | {fmt_ratio(ratio(thr['phantomdb'], thr['sqlite']))} (throughput)" if both else "") + " |")
        out.append("")
        if both:
            r = ratio(lat["phantomdb"], lat["sqlite"])
            checks.append(("PK lookup ≤ 3x SQLite latency", r is not None and r <= 3.0, fmt_ratio(r)))
            r = ratio(thr["phantomdb"], thr["sqlite"])
            checks.append(("single-row inserts ≥ SQLite throughput", r is not None and r >= 1.0, fmt_ratio(r)))

    if udf:
        out.append(f"## User-defined function\n")
        out.append(f"`SELECT count(*) FROM nums WHERE is_prime(x)` over {args.udf_rows:,} rows (x = 1..N), "
                   "the same trial-division algorithm everywhere. The PhantomDB built-in is a DataFusion "
                   "ScalarUDF registered by `phantomdb-bench` (standing in for a function compiled into "
                   "PhantomDB); the plugin is the bundled `math_functions` cdylib.\n")
        base = med(udf.get("PhantomDB built-in", "n/a"))
        out.append("| variant | time (ms) | vs PhantomDB built-in |")
        out.append("| --- | --- | --- |")
        for label, v in udf.items():
            out.append(f"| {label} | {cell(v)} | {fmt_ratio(ratio(med(v), base))} |")
        out.append("")
        p = med(udf.get("PhantomDB native plugin", "n/a"))
        if p and base:
            r = p / base
            checks.append(("native plugin scalar ≤ 1.05x built-in (SQL level)", r <= 1.05, fmt_ratio(r)))

    if storage:
        out.append("## Storage plugin boundary\n")
        out.append(f"A {args.storage_rows:,}-row table (`BIGINT, DOUBLE, TEXT`) in Parquet files in a local "
                   "directory, scanned through the `s3_storage` engine loaded as a plugin library (C ABI, "
                   "Arrow C Stream Interface, validated batches) and through the same engine code linked "
                   "into `phantomdb-bench` (SDK traits called directly). Medians of "
                   f"{storage_runs(args)} alternating runs after a warm-up.\n")
        out.append("| query | plugin (ms) | linked in (ms) | plugin / linked |")
        out.append("| --- | --- | --- | --- |")
        worst = 0.0
        for t in storage:
            r = t["plugin"] / t["linked"] if t["linked"] else None
            worst = max(worst, r or 0.0)
            out.append(f"| {t['name']} | {t['plugin'] * 1e3:.1f} | {t['linked'] * 1e3:.1f} | {fmt_ratio(r)} |")
        out.append("")
        checks.append(("storage plugin boundary < 1.10x linked in", worst < 1.10, fmt_ratio(worst)))

    if checks:
        out.append("## Targets\n")
        out.append("| target | measured | met |")
        out.append("| --- | --- | --- |")
        for name, ok, val in checks:
            out.append(f"| {name} | {val} | {'yes' if ok else 'no'} |")
        out.append("")
    return "\n".join(out), [c[0] for c in checks if not c[1]]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny data, one run, no warm-up (CI)")
    p.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--load-runs", type=int, default=1, help="TPC-H loads per system")
    p.add_argument("--timeout", type=float, default=300.0, help="per query and system, seconds")
    p.add_argument("--kv-rows", type=int, default=1_000_000)
    p.add_argument("--lookups", type=int, default=20_000)
    p.add_argument("--inserts", type=int, default=100_000)
    p.add_argument("--udf-rows", type=int, default=10_000_000)
    p.add_argument("--release", action="store_true", help="kept for old command lines: the build is always release")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    p.add_argument("--storage-rows", type=int, default=1_000_000, help="rows of the storage-boundary table")
    p.add_argument("--workdir", type=Path, default=BENCH / "work", help="data and database files")
    p.add_argument("--out", type=Path, default=BENCH / "results")
    p.add_argument("--no-save", action="store_true", help="print the table, do not write bench/results")
    p.add_argument("--csv-parts", type=int, default=None,
                   help="TPC-H CSV files per table (default 10 from SF10 on, else 1); PhantomDB loads each with its own COPY")
    p.add_argument("--bench-exe", type=Path, default=None,
                   help="run this phantomdb-bench binary instead of the one just built (A/B of two builds; the plugins are still built)")
    p.add_argument("--no-build", action="store_true",
                   help="do not run cargo: take phantomdb-bench from --bench-exe (default "
                        "$CARGO_TARGET_DIR/release) and the plugin libraries from its directory, so "
                        "other work in the checkout cannot change the binary between runs")
    p.add_argument("--reuse-load", action="store_true",
                   help="TPC-H: open the database files an earlier run loaded (same --sf and "
                        "--workdir) instead of loading again; the load row then reads n/a")
    p.add_argument("--no-optimizer", action="store_true",
                   help="skip the TPC-H runs with the advanced_optimizer plugin")
    args = p.parse_args()
    if args.smoke:
        args.sf, args.runs, args.warmup, args.timeout = 0.01, 1, 0, 120.0
        args.kv_rows, args.lookups, args.inserts, args.udf_rows = 10_000, 500, 1_000, 100_000
        args.storage_rows = 50_000
    args.systems = [s for s in args.systems.split(",") if s]
    args.workloads = [w for w in args.workloads.split(",") if w]
    for s in args.systems:
        if s not in SYSTEMS:
            p.error(f"unknown system {s}")

    args.workdir.mkdir(parents=True, exist_ok=True)
    STARTED_LOADAVG[0] = load_average()
    systems = []
    versions = {}
    if "phantomdb" in args.systems:
        if args.no_build:
            exe, plugin = prebuilt_phantomdb(args.bench_exe)
        else:
            exe, plugin = build_phantomdb(args.release)
        if args.bench_exe is not None:
            exe = args.bench_exe.resolve()
        pdb = PhantomDB(exe, plugin, args.workdir / "phantomdb-bench.stderr.log", OPTIMIZER_PLUGIN[0])
        systems.append(pdb)
        versions["phantomdb"] = pdb.version
    if "duckdb" in args.systems:
        systems.append(DuckDB())
        versions["duckdb"] = DuckDB.version
    if "sqlite" in args.systems:
        systems.append(SQLite())
        versions["sqlite"] = SQLite.version

    parts = args.csv_parts if args.csv_parts is not None else (10 if args.sf >= 10 else 1)
    csv_dir = generate_tpch(args.sf, args.workdir, parts) if "tpch" in args.workloads else None
    tpch = point = udf = storage = None
    started = time.perf_counter()
    with tqdm(total=steps_total(args, len(systems)), unit="step", file=sys.stderr,
              dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10) as bar:
        extra = [PhantomDBOptimized(s) for s in systems
                 if isinstance(s, PhantomDB) and not args.no_optimizer]
        r = Runner(args, systems, args.workdir, bar, extra)
        try:
            if "tpch" in args.workloads:
                tpch = r.tpch(csv_dir)
            if "point" in args.workloads:
                point = r.point()
            if "udf" in args.workloads:
                udf = r.udf()
            if "storage" in args.workloads:
                storage = r.storage()
        finally:
            for s in systems:
                s.close()
    text, missed = report(args, versions, tpch, point, udf, storage,
                          getattr(r, "reordered", None) if r.tpch_extra else None,
                          r.after_load)
    text += f"\nTotal wall time {time.perf_counter() - started:.0f} s.\n"
    print(text)
    if not args.no_save:
        args.out.mkdir(parents=True, exist_ok=True)
        tag = "smoke" if args.smoke else f"sf{args.sf:g}"
        if sorted(args.workloads) != sorted(ALL_WORKLOADS):
            # A partial run must not overwrite the day's full one.
            tag += "-" + "-".join(args.workloads)
        path = args.out / f"{dt.date.today().isoformat()}-{socket.gethostname()}-{tag}.md"
        # A second run the same day gets its own file (the first may be cited already).
        n = 2
        while path.exists():
            path = args.out / f"{dt.date.today().isoformat()}-{socket.gethostname()}-{tag}-{n}.md"
            n += 1
        path.write_text(text)
        print(f"written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr)
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
    if tpch and any(str(v).startswith("wrong answer") for res in tpch[1].values() for v in res.values()):
        print("wrong TPC-H answers: see the table", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
