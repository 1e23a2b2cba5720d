# One image for every production process (see docker-compose.yml):
#   migrate: leadmagnet db upgrade
#   web:     gunicorn "service:create_app()"   (the default CMD below)
#   worker:  celery -A worker worker
#   beat:    celery -A worker beat             (exactly one)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INSTANCE_PATH=/app/instance

# A writable home: gunicorn (25.1+) puts its control socket in ~/.gunicorn/.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app \
       --shell /usr/sbin/nologin app

# Dependencies in a layer of their own: rebuilt only when pyproject.toml changes.
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

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
