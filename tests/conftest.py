"""Shared test fixtures. Network tests use loopback only (127.0.0.0/8)."""

from __future__ import annotations
