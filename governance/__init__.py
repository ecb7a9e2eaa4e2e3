"""Governance: checks, alerts and their lifecycle, digests, the gap review, decisions, audit."""
