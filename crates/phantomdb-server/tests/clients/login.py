"""One login with psycopg 3: prints `OK <current_user> <ssl>` or `REFUSED <message>`.

Usage: login.py HOST PORT USER PASSWORD DBNAME SSLMODE
"""

import sys

import psycopg


def main() -> None:
    host, port, user, password, dbname, sslmode = sys.argv[1:7]
    try:
        with psycopg.connect(
            host=host,
            port=int(port),
            user=user,
            password=password,
            dbname=dbname,
            sslmode=sslmode,
            connect_timeout=20,
        ) as conn:
            who = conn.execute("SELECT current_user").fetchone()[0]
            print(f"OK {who} {conn.pgconn.ssl_in_use}")
    except psycopg.OperationalError as e:
        print(f"REFUSED {str(e).strip()}")


if __name__ == "__main__":
    main()
