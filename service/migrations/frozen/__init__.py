"""Frozen copies of the SQL old migrations ran: they never change with the live modules."""
