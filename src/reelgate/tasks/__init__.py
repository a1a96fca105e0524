"""Durable video tasks: the one row that every view reads."""
