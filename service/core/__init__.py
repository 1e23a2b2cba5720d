"""The ground every other package stands on: settings, models, clock, logs, broker, tokens."""
