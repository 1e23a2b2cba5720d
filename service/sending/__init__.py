"""Getting email out: the schedule, composing, the transports, delivery and the scheduler pass."""
