"""Shared test set-up.

DB drivers are imported before any ``freeze_time`` runs: psycopg otherwise
caches freezegun's fake datetime class and keeps returning fake datetimes.
"""

import sqlite3  # noqa: F401

import psycopg  # noqa: F401
import sqlalchemy  # noqa: F401
