"""Taking a signup in: validation, the signup itself, and confirmation."""
