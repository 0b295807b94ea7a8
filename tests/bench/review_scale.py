"""The access review's scale figure on chdb's ClickHouse engine: fills the platform's `events`
table with N gateway decisions (default 10 million, 115 days; 1,000 servers, 10,000 grants, one in
ten a denial, one in fifty allowed with no grant) in DATA_DIR, then times the review's summing
query (the SQL of reconciler/src/review/clickhouse.rs, one scan) in a fresh process. NAMES, a file
of `server NAMESPACE NAME` and `grant NAMESPACE NAME` lines, names a repository's servers and
grants instead (no grant line: the records name only grants the repository does not have).

  python -P tests/bench/review_scale.py fill DATA_DIR [N [NAMES]]
  /usr/bin/time -v python -P tests/bench/review_scale.py query DATA_DIR
"""

import resource
import sys
import time

from chdb import session as chs

TABLE = """CREATE TABLE IF NOT EXISTS events (
    timestamp DateTime64(3), trace_id String, source String, event_type String, payload String,
    server String MATERIALIZED JSONExtractString(payload, 'server'),
    namespace String MATERIALIZED JSONExtractString(payload, 'namespace'),
    decision String MATERIALIZED JSONExtractString(payload, 'decision'),
    tool_name String MATERIALIZED JSONExtractString(payload, 'tool_name')
) ENGINE = MergeTree ORDER BY timestamp"""

# The servers and grants the records name: `server NAMESPACE NAME` and `grant NAMESPACE NAME`.
NAMES = "CREATE TABLE IF NOT EXISTS names (kind String, namespace String, name String) ENGINE = Memory"
DEFAULT_NAMES = [
    "INSERT INTO names SELECT 'server', concat('ns-', toString(number % 100)), concat('srv-', toString(number)) FROM numbers(1000)",
    "INSERT INTO names SELECT 'grant', concat('ns-', toString(number % 100)), concat('grant-', toString(number)) FROM numbers(10000)",
]

# Record i goes to server i % S and, one in fifty aside (allowed with no grant), names grant
# i % G, or `retired-N` of the server's namespace when no grant is listed.
FILL = """INSERT INTO events (timestamp, trace_id, source, event_type, payload)
WITH (SELECT groupArray(namespace) FROM names WHERE kind = 'server') AS sns,
     (SELECT groupArray(name) FROM names WHERE kind = 'server') AS sn,
     (SELECT groupArray(namespace) FROM names WHERE kind = 'grant') AS gns,
     (SELECT groupArray(name) FROM names WHERE kind = 'grant') AS gn,
     number % length(sn) + 1 AS s, number % greatest(length(gn), 1) + 1 AS g
SELECT toDateTime64('2026-08-01 00:00:00', 3, 'UTC') + toIntervalMillisecond(number * 997),
       hex(number), 'mcp-gateway', 'mcp.request',
       concat('{{"method":"POST","path":"/', sn[s], '/mcp","status":200,"latency_ms":12,',
              '"bytes_in":310,"bytes_out":920,"server":"', sn[s], '","namespace":"', sns[s],
              '","team_id":"team","cluster":"local","human_id":"h-', toString(number % 5000), '","agent_id":"a-', toString(number % 700),
              '","subject_team_id":"","session_id":"","decision":"', if(number % 10 = 0, 'deny', 'allow'),
              '","reason":"allowed","policy_version":"v1","rpc_method":"tools/call","tool_name":"t-', toString(number % 7), '"',
              if(number % 50 = 1, '', concat(',"matched_grant":"', if(empty(gn), concat('retired-', toString(number % 10000)), gn[g]),
                                              '","matched_grant_namespace":"', if(empty(gn), sns[s], gns[g]), '"')),
              '}}')
FROM numbers({n})"""

START, END = 1790000000000, 1795000000000  # 2026-09-21 .. 2026-11-18, in milliseconds

# The one summing query of reconciler/src/review/clickhouse.rs.
SUMS = f"""SELECT namespace AS server_namespace, server AS server_name,
 if(decision = 'allow', simpleJSONExtractString(payload, 'matched_grant_namespace'), '') AS grant_namespace,
 if(decision = 'allow', simpleJSONExtractString(payload, 'matched_grant'), '') AS grant_name,
 countIf(decision = 'allow' AND timestamp >= fromUnixTimestamp64Milli({START})) AS calls,
 toUnixTimestamp64Milli(min(timestamp)) AS first, toUnixTimestamp64Milli(max(timestamp)) AS last
 FROM events WHERE event_type = 'mcp.request' AND timestamp <= fromUnixTimestamp64Milli({END})
 GROUP BY server_namespace, server_name, grant_namespace, grant_name
 SETTINGS output_format_json_quote_64bit_integers = 0 FORMAT JSONEachRow"""

mode, data = sys.argv[1], sys.argv[2]
db = chs.Session(data)
if mode == "fill":
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000
    db.query(TABLE)
    db.query(NAMES)
    if len(sys.argv) > 4:
        rows = [line.split() for line in open(sys.argv[4]) if line.strip()]
        db.query("INSERT INTO names VALUES " + ", ".join(f"('{k}', '{ns}', '{name}')" for k, ns, name in rows))
    else:
        for insert in DEFAULT_NAMES:
            db.query(insert)
    began = time.monotonic()
    db.query(FILL.format(n=n))
    print(f"filled {db.query('SELECT count() FROM events', 'CSV').bytes().decode().strip()} rows in {time.monotonic() - began:.1f} s")
else:
    began, cpu = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    rows = db.query(SUMS, "TabSeparated").bytes().count(b"\n")
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime
    print(f"sums: {rows} rows in {time.monotonic() - began:.2f} s wall, {cpu:.2f} s CPU")
