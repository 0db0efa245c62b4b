"""ClickHouse users and roles: who may write, who may read what, and how that is applied to a server or to chDB.

The roles and their grants live in ``clickhouse/access/NNN_name.sql`` (``{db}`` is the store's database):

* ``scc_admin`` — migrations and maintenance of the platform's database (``ALL ON scc.*``);
* ``scc_writer`` — the pipeline: ``SELECT, INSERT ON scc.*``, never DDL;
* ``scc_analyst`` — people and Grafana: ``SELECT`` on named columns of the indicator, alert, raw and dead-letter
  tables, without the columns in :data:`IDENTIFIER_COLUMNS` (pseudonymous patient keys, whole payloads, raw bytes).

The same statements reach three places:

* a ClickHouse server, as SQL run by a user with access management: :func:`apply_access` (``scc db access apply``),
  which also creates the login users of :data:`DEFAULT_USERS` with passwords read from the environment only;
* the compose server's ``users.d`` XML (:func:`users_xml`, checked in as ``deploy/clickhouse/users.d/scc-access.xml``);
* embedded chDB, which has no writable access storage (``CREATE ROLE`` fails there) but does load roles and users
  from a users XML and enforces their grants: :func:`open_store_as` opens a chDB store as one role::

      from clickhouse.access import open_store_as
      with open_store_as("chdb://./var/store", "scc_analyst") as st:
          st.query_rows("SELECT count() FROM scc.indicator_snapshots")   # allowed
          st.query_rows("SELECT patient_ref FROM scc.raw_adt")           # ACCESS_DENIED

chDB runs one engine per process and takes its configuration from the first connection: a store opened as another
role earlier in the same process (and not yet closed) would silently keep that role's rights, so
:func:`open_store_as` checks the roles the session really holds and refuses otherwise.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import clickhouse_connect

from clickhouse.store import (
    DEFAULT_DATABASE,
    INSERT_POINTS,
    Store,
    StoreError,
    mask_dsn,
    parse_dsn,
    view_of_insert_point,
)

ADMIN = "scc_admin"
WRITER = "scc_writer"
ANALYST = "scc_analyst"
ROLES = (ADMIN, WRITER, ANALYST)

IDENTIFIER_COLUMNS: Mapping[str, frozenset[str]] = {
    "raw_adt": frozenset({"patient_ref", "payload"}),
    "raw_ed": frozenset({"payload"}),
    "raw_ambulance": frozenset({"payload"}),
    "raw_discharge": frozenset({"payload"}),
    "raw_opel": frozenset({"payload"}),
    "deadletter": frozenset({"raw"}),
}
"""Columns the analyst role must never read, by table (see ``clickhouse/access/002_grants.sql`` for why)."""

NOT_FOR_ANALYSTS = frozenset(
    {
        "schema_migrations",
        # materialized views of 005_entity_tables: they only write the *_state tables, which analysts may read
        "ed_attendance_state_mv",
        "ambulance_incident_state_mv",
        "spell_state_adt_mv",
        "spell_state_discharge_mv",
        # refreshable views of 006_analyst_marts: they only rebuild the *_mart tables, which analysts may read
        "ed_attendances_mart_refresh",
        "ambulance_responses_mart_refresh",
        "spells_mart_refresh",
        # insert points of 007_event_lines and 009_snapshot_rows and their views: Null tables that keep nothing
        # (raw_* and indicator_snapshots hold the rows)
        *INSERT_POINTS,
        *map(view_of_insert_point, INSERT_POINTS),
    }
)
"""Tables the analyst role has no reason to read at all."""

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_GRANT = re.compile(r"^GRANT\s+(?P<what>.+?)\s+ON\s+(?P<on>\S+)\s+TO\s+(?P<role>\w+)(?P<option>\s+WITH GRANT OPTION)?$")
_CREATE_ROLE = re.compile(r"^CREATE ROLE IF NOT EXISTS (?P<role>\w+)$")
_COLUMN_GRANT = re.compile(r"^SELECT\((?P<columns>[^)]*)\)$")
_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AccessError(RuntimeError):
    """Access definitions that do not hold together, or that cannot be applied where they were asked to be."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One ``GRANT what ON object TO role [WITH GRANT OPTION]`` of the access files."""

    what: str
    on: str
    role: str
    grant_option: bool = False

    def sql(self) -> str:
        return f"GRANT {self.what} ON {self.on} TO {self.role}" + (" WITH GRANT OPTION" if self.grant_option else "")

    def xml_query(self) -> str:
        """The grant as a users.xml ``<grants><query>``: the same statement without ``TO role``."""
        return f"GRANT {self.what} ON {self.on}" + (" WITH GRANT OPTION" if self.grant_option else "")


@dataclass(frozen=True, slots=True)
class UserSpec:
    """A login user: its name, the role it holds, and the environment variable that holds its password."""

    name: str
    role: str
    password_env: str
    profile: str = "default"


DEFAULT_USERS: tuple[UserSpec, ...] = (
    UserSpec("scc_migrator", ADMIN, "CLICKHOUSE_MIGRATOR_PASSWORD"),
    UserSpec("scc_pipeline", WRITER, "CLICKHOUSE_WRITER_PASSWORD"),
    UserSpec("analyst", ANALYST, "CLICKHOUSE_ANALYST_PASSWORD"),
    UserSpec("grafana", ANALYST, "CLICKHOUSE_GRAFANA_PASSWORD", profile="readonly"),
)
"""Users :func:`apply_access` creates when their password variable is set (a user without one is skipped). User
names differ from role names so that ``GRANT role TO user`` is never ambiguous."""

XML_USERS: tuple[UserSpec, ...] = tuple(u for u in DEFAULT_USERS if u.name in ("scc_pipeline", "analyst"))
"""Users of ``deploy/clickhouse/users.d/scc-access.xml``: the admin is the image's ``CLICKHOUSE_USER`` and Grafana's
user is in ``grafana.xml`` next to it."""


# --- the access files ---------------------------------------------------------------------------------------------


def _files() -> list[tuple[str, str]]:
    folder = resources.files("clickhouse") / "access"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            if not _NAME.match(entry.name):
                raise AccessError(f"access file {entry.name!r} is not named NNN_name.sql")
            found.append((entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def access_statements(database: str = DEFAULT_DATABASE) -> list[str]:
    """Every statement of the access files, in order, with ``{db}`` filled in (comments dropped)."""
    statements: list[str] = []
    for _, text in _files():
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        statements.extend(s.strip() for s in _STATEMENT_END.split(body.replace("{db}", database)) if s.strip())
    return statements


def roles_and_grants(database: str = DEFAULT_DATABASE) -> tuple[list[str], list[Grant]]:
    """The roles the files create and their grants; raise :class:`AccessError` for any other kind of statement."""
    roles: list[str] = []
    grants: list[Grant] = []
    for statement in access_statements(database):
        one_line = " ".join(statement.split())
        if match := _CREATE_ROLE.match(one_line):
            roles.append(match["role"])
        elif match := _GRANT.match(one_line):
            if match["role"] not in roles:
                raise AccessError(f"grant to {match['role']!r} before CREATE ROLE: {one_line}")
            grants.append(Grant(match["what"], match["on"], match["role"], bool(match["option"])))
        else:
            raise AccessError(f"access files hold only CREATE ROLE IF NOT EXISTS and GRANT ... TO role: {one_line}")
    return roles, grants


def analyst_columns(database: str = DEFAULT_DATABASE) -> dict[str, set[str]]:
    """table -> the columns the analyst role may SELECT (column-level grants only; a table-wide grant is an error)."""
    out: dict[str, set[str]] = {}
    for grant in roles_and_grants(database)[1]:
        if grant.role != ANALYST:
            continue
        match = _COLUMN_GRANT.match(grant.what)
        if match is None or not grant.on.startswith(f"{database}."):
            raise AccessError(f"the analyst role gets SELECT(columns) on one table only, not: {grant.sql()}")
        table = grant.on.removeprefix(f"{database}.")
        out.setdefault(table, set()).update(c.strip().strip("`") for c in match["columns"].split(","))
    return out


# --- a ClickHouse server ------------------------------------------------------------------------------------------


@dataclass
class AccessReport:
    """What :func:`apply_access` ran (passwords never included) and which users it skipped and why."""

    statements: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def user_statements(user: UserSpec, password: str, salt: str | None = None) -> list[str]:
    """SQL that creates or updates ``user`` with a salted SHA-256 of ``password`` and makes its role the default.

    Only the hash travels to the server (and into its query log), never the password.
    """
    if not _USER_NAME.match(user.name):
        raise AccessError(f"user name {user.name!r} is not a plain identifier")
    if user.role not in ROLES:
        raise AccessError(f"user {user.name!r}: unknown role {user.role!r} (one of {ROLES})")
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hashlib.sha256((password + salt).encode()).hexdigest()
    identified = f"IDENTIFIED WITH sha256_hash BY {_quote(digest)} SALT {_quote(salt)}"
    return [
        f"CREATE USER IF NOT EXISTS {user.name} {identified}",
        f"ALTER USER {user.name} {identified}",
        f"GRANT {user.role} TO {user.name}",
        f"ALTER USER {user.name} DEFAULT ROLE {user.role} SETTINGS PROFILE {_quote(user.profile)}",
    ]


def _masked(statement: str) -> str:
    return re.sub(r"BY '[^']*' SALT '[^']*'", "BY '***' SALT '***'", statement)


def apply_access(
    store: Store, users: Sequence[UserSpec] = DEFAULT_USERS, environ: Mapping[str, str] | None = None
) -> AccessReport:
    """Create the roles, grant them, and create the login users whose password variable is set, on a server.

    Idempotent (``IF NOT EXISTS``; re-running resets passwords to the environment's). Needs a user with access
    management (the compose image's ``CLICKHOUSE_USER``). chDB cannot store roles made by SQL: use
    :func:`open_store_as` there.
    """
    if store.target.kind != "server":
        raise AccessError(
            f"{store.target.display}: chDB has no writable access storage, so CREATE ROLE cannot work there; "
            "embedded stores enforce the same roles through open_store_as(dsn, role)"
        )
    env = os.environ if environ is None else environ
    report = AccessReport()
    todo = [(s, s) for s in access_statements(store.database)]
    for user in users:
        password = env.get(user.password_env, "")
        if not password:
            report.skipped[user.name] = f"{user.password_env} is not set"
            continue
        todo.extend((s, _masked(s)) for s in user_statements(user, password))
        report.users.append(user.name)
    for statement, shown in todo:
        try:
            store.command(statement)
        except Exception as exc:
            raise AccessError(f"{shown}: {type(exc).__name__}: {mask_dsn(str(exc))[:500]}") from None
        report.statements.append(shown)
    return report


# --- users.d XML: the compose server and embedded chDB -------------------------------------------------------------


def _roles_element(parent: ET.Element, database: str) -> None:
    roles, grants = roles_and_grants(database)
    element = ET.SubElement(parent, "roles")
    for role in roles:
        grants_element = ET.SubElement(ET.SubElement(element, role), "grants")
        for grant in grants:
            if grant.role == role:
                ET.SubElement(grants_element, "query").text = grant.xml_query()


def _user_element(users: ET.Element, name: str, role: str | None, profile: str, password_env: str | None) -> None:
    user = ET.SubElement(users, name)
    if password_env is None:
        ET.SubElement(user, "password").text = ""
    else:
        ET.SubElement(user, "password", {"from_env": password_env})
    ET.SubElement(ET.SubElement(user, "networks"), "ip").text = "::/0"
    ET.SubElement(user, "profile").text = profile
    ET.SubElement(user, "quota").text = "default"
    if role is not None:
        ET.SubElement(ET.SubElement(user, "grants"), "query").text = f"GRANT {role}"


def _serialise(root: ET.Element, comment: str) -> str:
    ET.indent(root, space="    ")
    return f"<!-- {comment} -->\n" + ET.tostring(root, encoding="unicode") + "\n"


def users_xml(database: str = DEFAULT_DATABASE, users: Sequence[UserSpec] = XML_USERS) -> str:
    """The roles and users as a ClickHouse ``users.d`` file; passwords are ``from_env`` references, never values.

    Checked in as ``deploy/clickhouse/users.d/scc-access.xml`` (a test keeps it equal to this). The admin user is
    not in it: the server image creates ``CLICKHOUSE_USER`` with access management, and that user migrates.
    """
    root = ET.Element("clickhouse")
    _roles_element(root, database)
    users_element = ET.SubElement(root, "users")
    for user in users:
        if user.role != ADMIN:
            _user_element(users_element, user.name, user.role, user.profile, user.password_env)
    return _serialise(
        root,
        "Generated by clickhouse/access.py users_xml() from clickhouse/access/*.sql: do not edit, regenerate with\n"
        "     `python -m clickhouse.access xml > deploy/clickhouse/users.d/scc-access.xml`. Passwords come from the\n"
        "     server's environment (from_env), set in compose from .env; see docs/security.md",
    )


def chdb_users_xml(role: str, database: str = DEFAULT_DATABASE) -> str:
    """A users XML for embedded chDB in which ``default`` (chDB's only session user) holds ``role`` and no more."""
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}: one of {ROLES}")
    root = ET.Element("clickhouse")
    ET.SubElement(ET.SubElement(root, "profiles"), "default")
    ET.SubElement(ET.SubElement(root, "quotas"), "default")
    _roles_element(root, database)
    _user_element(ET.SubElement(root, "users"), "default", role, "default", None)
    return _serialise(root, f"chDB session user 'default' as role {role} (clickhouse/access.py)")


def chdb_config(store_path: Path, role: str, database: str = DEFAULT_DATABASE) -> Path:
    """Write the chDB engine configuration for ``role`` under ``store_path/scc-access/<role>/``; return its path."""
    folder = store_path / "scc-access" / role
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users.xml"
    users.write_text(chdb_users_xml(role, database), encoding="utf-8")
    root = ET.Element("clickhouse")
    directories = ET.SubElement(root, "user_directories")
    ET.SubElement(ET.SubElement(directories, "users_xml"), "path").text = str(users)
    config = folder / "config.xml"
    config.write_text(_serialise(root, f"chDB engine configuration for role {role}"), encoding="utf-8")
    return config


def open_store_as(dsn: str, role: str) -> Store:
    """Open an embedded chDB store whose session holds exactly ``role`` (ClickHouse enforces its grants).

    Close every other store of this process on any chDB path first: the engine keeps the configuration of the
    first connection, and this function refuses (rather than hand back more rights) when that happened.
    """
    target = parse_dsn(dsn)
    if target.kind != "chdb":
        raise AccessError(f"{target.display}: on a server, connect as a user that holds {role!r} instead")
    path = Path(target.connect_args["path"])
    path.mkdir(parents=True, exist_ok=True)
    config = chdb_config(path, role, target.database)
    try:
        client = clickhouse_connect.get_client(
            interface="chdb", path=str(path), chdb_options={"config-file": str(config)}
        )
    except Exception as exc:
        raise StoreError(f"cannot open store {target.display} as {role}: {type(exc).__name__}: {exc}") from None
    store = Store(client, target)
    held = store.query_rows("SELECT currentRoles()")[0][0]
    if list(held) != [role]:
        store.close()
        raise AccessError(
            f"chDB in this process already runs with other access settings (session roles {list(held)}, wanted "
            f"[{role!r}]): close every store of this process before opening one as a role"
        )
    return store


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m clickhouse.access sql|xml [DATABASE]``: print the SQL or the users.d XML."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("sql", "xml"):
        print("usage: python -m clickhouse.access sql|xml [DATABASE]", file=sys.stderr)
        return 2
    database = args[1] if len(args) > 1 else DEFAULT_DATABASE
    if args[0] == "sql":
        print(";\n".join(access_statements(database)) + ";")
    else:
        print(users_xml(database), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
