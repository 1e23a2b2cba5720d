"""A worker process for the broadcast tests: delivers the ids given on the command line, as
a Celery worker's deliver_batch does, with the settings of its environment."""

from __future__ import annotations

import json
import sys

from service import create_app
from service.sending.context import for_app
from service.sending.dispatch import deliver_batch

if __name__ == "__main__":
    ids = json.loads(sys.argv[1])
    app = create_app()
    with app.app_context():
        sent = deliver_batch(for_app(app), ids, lambda: False)
    print(sent, flush=True)
