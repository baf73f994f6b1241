"""The schema, as a list of migrations. Add a new function; never edit an applied one."""

from __future__ import annotations

import sqlite_utils

from data.db import migration, run_script


@migration("0001_foundation")
def foundation(db: sqlite_utils.Database) -> None:
    """Residents, contacts, operators, calls, call events and service requests."""
    run_script(
        db,
        """
        CREATE TABLE residents (
            id INTEGER PRIMARY KEY,
            phone TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            gender TEXT,
            birth_date TEXT NOT NULL,
            community TEXT NOT NULL,
            address TEXT NOT NULL,
            category TEXT,
            medical_notes TEXT,
            dialect TEXT,
            lives_alone INTEGER NOT NULL DEFAULT 0,
            free_minutes INTEGER,
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            resident_id INTEGER NOT NULL REFERENCES residents(id) ON DELETE CASCADE,
            slot INTEGER NOT NULL CHECK (slot BETWEEN 1 AND 9),
            name TEXT NOT NULL,
            relation TEXT,
            phone TEXT NOT NULL,
            emergency INTEGER NOT NULL DEFAULT 0,
            UNIQUE (resident_id, slot)
        );
        CREATE TABLE operators (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            phone TEXT NOT NULL,
            skills TEXT NOT NULL DEFAULT '[]',
            active INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            call_sid TEXT NOT NULL UNIQUE,
            line TEXT NOT NULL,
            from_number TEXT,
            to_number TEXT,
            resident_id INTEGER REFERENCES residents(id),
            direction TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT,
            status_rank INTEGER NOT NULL DEFAULT 0,
            duration INTEGER
        );
        CREATE INDEX calls_started_at ON calls (started_at);
        CREATE INDEX calls_resident ON calls (resident_id, started_at);
        CREATE TABLE call_events (
            id INTEGER PRIMARY KEY,
            call_sid TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            dedup_key TEXT UNIQUE
        );
        CREATE INDEX call_events_call ON call_events (call_sid, id);
        CREATE TABLE service_requests (
            id INTEGER PRIMARY KEY,
            call_sid TEXT,
            resident_id INTEGER REFERENCES residents(id),
            phone TEXT,
            type TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'new',
            callback_requested INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX service_requests_status ON service_requests (status, created_at);
        """,
    )


@migration("0002_operator_queue")
def operator_queue(db: sqlite_utils.Database) -> None:
    """Queue outcomes on calls, the operators' presence history, and supervisor alerts."""
    run_script(
        db,
        """
        ALTER TABLE calls ADD COLUMN queued_at TEXT;
        ALTER TABLE calls ADD COLUMN answered_at TEXT;
        ALTER TABLE calls ADD COLUMN operator_id TEXT;
        ALTER TABLE calls ADD COLUMN outcome TEXT;
        CREATE TABLE operator_presence (
            id INTEGER PRIMARY KEY,
            operator_id TEXT NOT NULL,
            state TEXT NOT NULL,
            at TEXT NOT NULL,
            source TEXT NOT NULL UNIQUE
        );
        CREATE INDEX operator_presence_op ON operator_presence (operator_id, at);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            call_sid TEXT,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            resolved_at TEXT
        );
        CREATE INDEX alerts_open ON alerts (resolved_at, created_at);
        """,
    )


@migration("0003_minute_ledger")
def minute_ledger(db: sqlite_utils.Database) -> None:
    """The append-only minute ledger of the shortcut line."""
    run_script(
        db,
        """
        CREATE TABLE ledger_entries (
            id INTEGER PRIMARY KEY,
            resident_id INTEGER NOT NULL REFERENCES residents(id),
            month TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('reserve', 'release', 'usage', 'adjust')),
            seconds INTEGER NOT NULL,
            reservation_id INTEGER REFERENCES ledger_entries(id),
            call_sid TEXT,
            leg_sid TEXT,
            talk_seconds INTEGER,
            source TEXT,
            actor TEXT,
            reason TEXT,
            expires_at TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX ledger_resident_month ON ledger_entries (resident_id, month);
        CREATE UNIQUE INDEX ledger_one_settlement
            ON ledger_entries (reservation_id, kind) WHERE kind IN ('release', 'usage');
        CREATE UNIQUE INDEX ledger_one_reservation_per_dial
            ON ledger_entries (call_sid, leg_sid) WHERE kind = 'reserve';
        CREATE INDEX ledger_call ON ledger_entries (call_sid);
        CREATE INDEX ledger_reservations_expiring ON ledger_entries (expires_at)
            WHERE kind = 'reserve';
        """,
    )


@migration("0004_accounts")
def accounts(db: sqlite_utils.Database) -> None:
    """Staff accounts, login attempts (for throttling) and the audit log of admin actions."""
    run_script(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'operator')),
            operator_id TEXT REFERENCES operators(id),
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            password_changed_at TEXT NOT NULL
        );
        CREATE TABLE login_attempts (
            id INTEGER PRIMARY KEY,
            account TEXT NOT NULL,
            address TEXT NOT NULL,
            at TEXT NOT NULL,
            ok INTEGER NOT NULL
        );
        CREATE INDEX login_attempts_account ON login_attempts (account, at);
        CREATE INDEX login_attempts_address ON login_attempts (address, at);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX calls_line_started ON calls (line, started_at);
        CREATE INDEX calls_operator_started ON calls (operator_id, started_at);
        CREATE INDEX calls_from_started ON calls (from_number, started_at);
        """,
    )


@migration("0006_alert_acknowledgement")
def alert_acknowledgement(db: sqlite_utils.Database) -> None:
    """Who acknowledged a supervisor alert (``resolved_at`` is when)."""
    run_script(db, "ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;")


@migration("0007_calls_became_sos")
def calls_became_sos(db: sqlite_utils.Database) -> None:
    """Hotline calls that turned into SOS calls (``routed_to_sos``), counted as SOS calls.

    The call log counts and filters by the line a call is counted under (data/call_log.py
    ``LINE``), indexed as that very expression; ``line`` and ``became_sos`` are in the index
    too, so that counting a day's calls per line reads the index alone, as it did by ``line``.
    """
    run_script(
        db,
        """
        ALTER TABLE calls ADD COLUMN became_sos INTEGER NOT NULL DEFAULT 0;
        UPDATE calls SET became_sos = 1 WHERE line != 'sos' AND call_sid IN
            (SELECT call_sid FROM call_events WHERE kind = 'routed_to_sos');
        CREATE INDEX calls_became_sos_started ON calls (started_at) WHERE became_sos = 1;
        CREATE INDEX calls_counted_line_started ON calls
            ((CASE WHEN became_sos THEN 'sos' ELSE line END), started_at, line, became_sos);
        """,
    )


@migration("0008_helpers_and_tasks")
def helpers_and_tasks(db: sqlite_utils.Database) -> None:
    """Helpers (助老员), their tasks (派单), each task's offers to helpers and its timeline."""
    run_script(
        db,
        """
        CREATE TABLE helpers (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            phone TEXT NOT NULL UNIQUE,
            communities TEXT NOT NULL DEFAULT '[]',
            skills TEXT NOT NULL DEFAULT '[]',
            active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE tasks (
            id INTEGER PRIMARY KEY,
            resident_id INTEGER REFERENCES residents(id),
            phone TEXT,
            need TEXT NOT NULL,
            community TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            priority TEXT NOT NULL CHECK (priority IN ('emergency', 'normal')),
            source TEXT NOT NULL,
            call_sid TEXT,
            request_id INTEGER REFERENCES service_requests(id),
            created_by TEXT,
            state TEXT NOT NULL DEFAULT 'pending',
            helper_id TEXT REFERENCES helpers(id),
            attempt INTEGER NOT NULL DEFAULT 0,
            round INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            accept_by TEXT NOT NULL,
            due_at TEXT NOT NULL,
            accepted_at TEXT,
            arrived_at TEXT,
            done_at TEXT,
            unaccepted_alerted_at TEXT,
            followup_state TEXT,
            followup_answer TEXT,
            followup_attempts INTEGER NOT NULL DEFAULT 0,
            attention TEXT,
            attention_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX tasks_state ON tasks (state, priority, created_at);
        CREATE INDEX tasks_helper ON tasks (helper_id, state);
        CREATE INDEX tasks_resident ON tasks (resident_id, created_at);
        CREATE INDEX tasks_call ON tasks (call_sid);
        CREATE UNIQUE INDEX tasks_one_per_request ON tasks (request_id)
            WHERE request_id IS NOT NULL;
        CREATE TABLE task_offers (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks(id),
            attempt INTEGER NOT NULL,
            round INTEGER NOT NULL,
            helper_id TEXT NOT NULL REFERENCES helpers(id),
            leg_sid TEXT,
            state TEXT NOT NULL DEFAULT 'ringing',
            at TEXT NOT NULL,
            UNIQUE (task_id, attempt)
        );
        CREATE TABLE task_events (
            id INTEGER PRIMARY KEY,
            task_id INTEGER NOT NULL REFERENCES tasks(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            dedup_key TEXT UNIQUE
        );
        CREATE INDEX task_events_task ON task_events (task_id, id);
        """,
    )


@migration("0009_care_calls")
def care_calls(db: sqlite_utils.Database) -> None:
    """Each resident's care-call schedule, the day's care calls and their timelines.

    Residents who live alone are called daily unless someone says otherwise.
    """
    run_script(
        db,
        """
        ALTER TABLE residents ADD COLUMN care TEXT NOT NULL DEFAULT 'none';
        UPDATE residents SET care = 'daily' WHERE lives_alone = 1;
        CREATE TABLE care_calls (
            id INTEGER PRIMARY KEY,
            resident_id INTEGER NOT NULL REFERENCES residents(id),
            phone TEXT NOT NULL,
            community TEXT NOT NULL DEFAULT '',
            day TEXT NOT NULL,
            planned_at TEXT NOT NULL,
            next_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'scheduled',
            attempts INTEGER NOT NULL DEFAULT 0,
            call_sid TEXT,
            placed_at TEXT,
            answered_at TEXT,
            answer TEXT,
            task_id INTEGER REFERENCES tasks(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (resident_id, day)
        );
        CREATE INDEX care_calls_day ON care_calls (day, state);
        CREATE INDEX care_calls_due ON care_calls (state, next_at);
        CREATE INDEX care_calls_resident ON care_calls (resident_id, day);
        CREATE TABLE care_events (
            id INTEGER PRIMARY KEY,
            care_call_id INTEGER NOT NULL REFERENCES care_calls(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            dedup_key TEXT UNIQUE
        );
        CREATE INDEX care_events_call ON care_events (care_call_id, id);
        """,
    )
