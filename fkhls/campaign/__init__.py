"""Fault campaigns: sharded, resumable runs through both engines, and their reports."""
