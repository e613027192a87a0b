# Paydesk: one image for web, worker and beat (the command differs). Slim, non-root, gunicorn.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# WeasyPrint needs Pango (receipts' PDFs); fonts so PDFs render text.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
      libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings to load; the key is a build-time placeholder, never used to serve.
RUN DJANGO_SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 --home-dir /app paydesk \
 && mkdir -p /app/var && chown -R paydesk /app/var
USER paydesk

EXPOSE 8000
# Workers, threads and timeout: gunicorn.conf.py (WEB_CONCURRENCY, WEB_THREADS, WEB_TIMEOUT).
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
