"""psycopg 3 and SQLAlchemy against `phantomdb serve` (run by tests/server/python.rs).

Usage: psycopg_workload.py HOST PORT USER PASSWORD
"""

import datetime
import decimal
import sys

import psycopg
from psycopg import errors


def main() -> None:
    host, port, user, password = sys.argv[1:5]
    dsn = f"host={host} port={port} user={user} password={password} dbname=app"

    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer TEXT NOT NULL,"
                " amount DECIMAL(10, 2), placed DATE, at TIMESTAMP, paid BOOLEAN, note BYTEA)"
            )
            rows = [
                (i, f"c{i % 3}", decimal.Decimal(f"{i}.25"), datetime.date(2026, 1, 1 + i),
                 datetime.datetime(2026, 1, 1, 12, i, 0), i % 2 == 0, bytes([i, 255]))
                for i in range(1, 11)
            ]
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        conn.commit()

        # Parameters and text results.
        with conn.cursor() as cur:
            cur.execute("SELECT id, customer, amount, placed, at, paid, note FROM orders"
                        " WHERE id = %s", (4,))
            got = cur.fetchone()
            assert got == rows[3], got
            cur.execute("SELECT customer, count(*), sum(amount) FROM orders"
                        " WHERE paid = %s GROUP BY customer ORDER BY customer", (True,))
            got = cur.fetchall()
            # Paid orders are the even ids: c0 has 6, c1 has 4 and 10, c2 has 2 and 8.
            assert got == [("c0", 1, decimal.Decimal("6.25")),
                           ("c1", 2, decimal.Decimal("14.50")),
                           ("c2", 2, decimal.Decimal("10.50"))], got

        # Binary results.
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT id, amount, placed, at, paid, note FROM orders WHERE id = %s", (7,))
            got = cur.fetchone()
            assert got == (7, decimal.Decimal("7.25"), datetime.date(2026, 1, 8),
                           datetime.datetime(2026, 1, 1, 12, 7, 0), False, bytes([7, 255])), got
        conn.commit()

        # An error aborts the transaction until ROLLBACK.
        with conn.cursor() as cur:
            cur.execute("DELETE FROM orders WHERE id = 1")
            try:
                cur.execute("SELECT * FROM no_such_table")
                raise AssertionError("expected an error")
            except errors.UndefinedTable:
                pass
            try:
                cur.execute("SELECT 1")
                raise AssertionError("expected an aborted transaction")
            except errors.InFailedSqlTransaction:
                pass
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM orders")
            assert cur.fetchone() == (10,), "the delete was rolled back"

        # COPY both ways.
        with conn.cursor() as cur:
            with cur.copy("COPY orders (id, customer) FROM STDIN") as copy:
                copy.write_row((11, "copied"))
                copy.write_row((12, "tab\there"))
            conn.commit()
            cur.execute("SELECT customer FROM orders WHERE id = 12")
            assert cur.fetchone() == ("tab\there",)
            out = []
            with cur.copy("COPY (SELECT id, customer FROM orders WHERE id > 10 ORDER BY id)"
                          " TO STDOUT") as copy:
                for row in copy.rows():
                    out.append(row)
            assert out == [("11", "copied"), ("12", "tab\there")], out
        conn.commit()

        # Session settings.
        with conn.cursor() as cur:
            cur.execute("SET app.tenant = 'acme'")
            cur.execute("SELECT current_setting('app.tenant')")
            assert cur.fetchone() == ("acme",)
        conn.commit()

    # Wrong password.
    try:
        psycopg.connect(f"host={host} port={port} user={user} password=wrong dbname=app")
        raise AssertionError("expected a login failure")
    except psycopg.OperationalError as e:
        assert "password authentication failed" in str(e), str(e)

    sqlalchemy_checks(host, port, user, password)
    print("psycopg workload ok")


def sqlalchemy_checks(host: str, port: str, user: str, password: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+psycopg://{user}:{password}@{host}:{port}/app")
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM orders WHERE id > :n"), {"n": 5}).scalar()
        assert total == 7, total
    inspector = sa.inspect(engine)
    assert "orders" in inspector.get_table_names(), inspector.get_table_names()
    assert inspector.has_table("orders")
    columns = {c["name"]: c for c in inspector.get_columns("orders")}
    assert set(columns) == {"id", "customer", "amount", "placed", "at", "paid", "note"}, columns
    assert columns["customer"]["nullable"] is False
    assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["id"]
    metadata = sa.MetaData()
    metadata.reflect(engine)
    assert "orders" in metadata.tables
    engine.dispose()


if __name__ == "__main__":
    main()
