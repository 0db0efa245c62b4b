-- The platform's three ClickHouse roles (docs/security.md). Applied by clickhouse/access.py: on a server as SQL
-- (`scc db access apply`, by a user with access management), and rendered into users.d XML for the compose server
-- and for embedded chDB, which cannot store SQL-created roles. {db} is the store's database (default scc).
--
-- scc_admin    migrations and maintenance of the platform's database (CREATE/ALTER/DROP, OPTIMIZE, TRUNCATE)
-- scc_writer   the pipeline (sink, replay, backfill): reads and inserts rows, changes no table
-- scc_analyst  people and Grafana: reads indicators, alerts and the raw events without the identifying columns

CREATE ROLE IF NOT EXISTS scc_admin;
CREATE ROLE IF NOT EXISTS scc_writer;
CREATE ROLE IF NOT EXISTS scc_analyst;
