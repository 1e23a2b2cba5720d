# One image for every production process (see docker-compose.yml):
#   migrate: leadmagnet db upgrade
#   web:     gunicorn "service:create_app()"   (the default CMD below)
#   worker:  celery -A worker worker
#   beat:    celery -A worker beat             (exactly one)
# An exact Python release, not a moving tag: 3.13.12 carries the fixes for the email header
# injections in security/known-bad.toml (CVE-2024-6923, gh-121284, CVE-2026-1299); the build
# below probes it anyway. Change it with the lock in mind (README: Dependencies and security
# updates); requirements.lock resolves for every Python from 3.11.
FROM python:3.13.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INSTANCE_PATH=/app/instance

# A writable home: gunicorn (25.1+) puts its control socket in ~/.gunicorn/.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
       --shell /usr/sbin/nologin app

# The base image's Python must pass the probes for known-bad interpreters.
WORKDIR /src
COPY scripts/python_check.py scripts/
COPY security/known-bad.toml security/
RUN python scripts/python_check.py

# Dependencies in a layer of their own, exactly as locked (hash-checked): rebuilt only when
# requirements.lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The service itself (.dockerignore lets only the package sources through).
COPY . .
RUN pip install --no-deps . \
    && rm -rf /src \
    && mkdir -p /app/instance \
    && chown app:app /app/instance

WORKDIR /app
USER app
EXPOSE 8000

# Docker's stop grace is 10 s by default; compose gives web 30 s, more than the 20 s here.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", \
     "--timeout", "30", "--graceful-timeout", "20", "--worker-tmp-dir", "/dev/shm", \
     "--access-logfile", "-", "service:create_app()"]
