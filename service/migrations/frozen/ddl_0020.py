"""Frozen: service/insights/trigger_ddl.py as migration 0020 ran it. Never edit.

Creating and dropping the figures' triggers (rollup_sql.py, kept_sql.py) on both backends:
a plpgsql function and a trigger per name on PostgreSQL, a trigger with its body on SQLite."""

from __future__ import annotations

from sqlalchemy import Connection, text

INSERT = "INSERT INTO figure_delta (magnet_id, name, part, n) "
# A statement and the condition (on NEW and OLD alone) under which it can insert anything:
# PostgreSQL runs it inside IF condition (a cheap test instead of a statement's start-up on
# every row); SQLite runs the statement, whose WHERE holds the condition too.
Guarded = tuple[str, str]
# (name, timing, event, table, when, statements) of one trigger.
Trigger = tuple[str, str, str, str, str, list[str | Guarded]]


def body(d: str, statement: str | Guarded) -> str:
    """One statement of a trigger's body on dialect `d`."""
    if isinstance(statement, str):
        return statement
    condition, sql = statement
    return f"IF {condition} THEN\n{sql};\nEND IF" if d == "postgresql" else sql


def create(conn: Connection, triggers: list[Trigger]) -> None:
    """Create these triggers. A SQLite batch rebuild of their table drops them: create them
    again after one."""
    d = conn.dialect.name
    for name, timing, event, table, when, statements in triggers:
        sql = ";\n".join(body(d, statement) for statement in statements) + ";"
        if d == "postgresql":
            back = "NULL" if timing == "AFTER" else "OLD" if event == "DELETE" else "NEW"
            conn.execute(
                text(
                    # Generic plans: a custom plan per row costs more than the statement.
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                    "SET plan_cache_mode = force_generic_plan AS $$ BEGIN\n"
                    f"{sql}\nRETURN {back}; END $$"
                )
            )
            condition = f"WHEN ({when})" if when else ""
            tail = f"EXECUTE FUNCTION {name}()"
        else:
            condition = f"WHEN {when}" if when else ""
            tail = f"BEGIN\n{sql}\nEND"
        conn.execute(
            text(
                f"CREATE TRIGGER {name} {timing} {event} ON {table} FOR EACH ROW {condition} {tail}"
            )
        )


def drop(conn: Connection, triggers: list[Trigger]) -> None:
    """Drop these triggers (and their functions), where they exist."""
    d = conn.dialect.name
    for name, _timing, _event, table, _when, _statements in triggers:
        if d == "postgresql":
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
        else:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name}"))
