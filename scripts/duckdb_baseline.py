#!/usr/bin/env python3
"""DuckDB baseline of the summary benchmark: the same stored facts exported to Parquet once,
then aggregated at query time by DuckDB for the windows the benchmark answered, checked
against the values it answered and timed beside its route times.

Usage: duckdb_baseline.py REPORT.json [RUNS]  (REPORT from NA_BENCH_REPORT; scripts/bench-summary
runs both). The Parquet file is kept beside the report for the next run.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

# core@1's rules for what a user received (metrics-plugins/plugins/core), in SQL: a fact
# counts unless deleted (8) or expired (64); it is received unless self (2); mentions of the
# author of what they reply to are not mentions (128); a zap counts unless invalid (4) or a
# duplicate payment (16), and only with an amount.
ZAP = "class = 8 AND flags & 20 = 0 AND amount_msats IS NOT NULL"
ENGAGED = f"(class IN (2, 3, 4, 5, 6) OR ({ZAP}))"
QUERY = f"""
SELECT
  count(*) FILTER (WHERE class = 2) AS replies_received,
  count(*) FILTER (WHERE class = 3) AS comments_received,
  count(*) FILTER (WHERE class = 4) AS reactions_received,
  count(*) FILTER (WHERE class = 5) AS reposts_received,
  count(*) FILTER (WHERE class = 6) AS quotes_received,
  count(*) FILTER (WHERE class = 7 AND flags & 128 = 0) AS mentions_received,
  count(*) FILTER (WHERE {ZAP}) AS zaps_received,
  coalesce(sum(amount_msats) FILTER (WHERE {ZAP}), 0) AS zap_msats_received,
  count(DISTINCT actor) FILTER (WHERE {ZAP}) AS unique_zappers,
  count(DISTINCT actor) FILTER (WHERE {ENGAGED}) AS unique_engagers
FROM read_parquet(?)
WHERE subject = ? AND created_at >= ? AND created_at < ? AND flags & 74 = 0
"""


def export(database_url: str, parquet: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "facts.csv")
        sql = (
            "\\copy (SELECT extract(epoch FROM created_at)::bigint, class, encode(actor, 'hex'), "
            "encode(subject, 'hex'), amount_msats, flags FROM facts) TO '" + csv + "' CSV"
        )
        subprocess.run(["psql", database_url, "-qAtc", sql], check=True)
        duckdb.sql(
            f"""COPY (SELECT * FROM read_csv('{csv}', header = false, columns = {{
                  'created_at': 'BIGINT', 'class': 'SMALLINT', 'actor': 'VARCHAR',
                  'subject': 'VARCHAR', 'amount_msats': 'BIGINT', 'flags': 'INTEGER'}}))
                TO '{parquet}' (FORMAT parquet)"""
        )


def main() -> None:
    report_path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    report = json.load(open(report_path))
    parquet = os.path.join(os.path.dirname(os.path.abspath(report_path)), f"facts_{report['tier']}.parquet")
    if not os.path.exists(parquet):
        started = time.perf_counter()
        export(report["database_url"], parquet)
        print(f"exported the facts to {parquet} in {time.perf_counter() - started:.0f} s")
    con = duckdb.connect()
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [parquet]).fetchone()[0]
    print(f"DuckDB {duckdb.__version__} over {rows} facts in Parquet ({os.path.getsize(parquet) >> 20} MiB), {runs} runs per window:")
    print(f"  {'window':<6} {'duckdb p50':>11} {'duckdb p99':>11} {'route p50':>10} {'duckdb/route':>13}")
    approximate = []
    for w in report["windows"]:
        args = [parquet, report["target"], w["from"], w["to"]]
        cursor = con.execute(QUERY, args)
        names = [d[0] for d in cursor.description]
        got = dict(zip(names, cursor.fetchone()))
        for name, value in got.items():
            want = w["values"][name]
            error = want["relative_error"]
            # An approximate distinct count (HyperLogLog) must be within 3 standard errors.
            close = want["value"] == value if error is None else abs(want["value"] - value) <= 3 * error * value
            if not close:
                sys.exit(f"{name} over {w['window']}: DuckDB {value}, the query API {want}")
            if error is not None:
                approximate.append(f"{name} over {w['window']}: {want['value']} vs exact {value}")
        for _ in range(3):
            con.execute(QUERY, args).fetchone()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            con.execute(QUERY, args).fetchone()
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        p50 = statistics.median(times)
        p99 = times[round((len(times) - 1) * 0.99)]
        route = w["route_ms"][0]
        print(f"  {w['window']:<6} {p50:>8.2f} ms {p99:>8.2f} ms {route:>7.2f} ms {p50 / route:>12.0f}x")
    print("(every count and sum DuckDB gives equals the query API's; distinct counts are equal where")
    print(" the API says exact, and within 3 standard errors where it says approximate:")
    for line in approximate:
        print(f"   {line}")
    print(")")


if __name__ == "__main__":
    main()
