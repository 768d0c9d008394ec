# syntax=docker/dockerfile:1
# The CSU image. web (ASGI), ingest, the Celery worker and beat all run from it; see
# docker-compose.yml. Build: docker compose build
# Python 3.12: on 3.11 redis-py's asyncio client can lose the cancellation a closing
# websocket sends its consumer, which then polls Redis until cancelled again (measured
# with the Redis channel layer: 12 of 20 disconnects hung on 3.11.7, none on 3.12.1).
FROM python:3.12-slim-bookworm

LABEL org.opencontainers.image.title="CSU" \
      org.opencontainers.image.description="Centre de supervision urbaine" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# The uv that wrote uv.lock.
ARG UV_VERSION=0.13.9

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH="/app/.venv/bin:${PATH}" \
    DJANGO_SETTINGS_MODULE=csu.settings \
    CSU_DATA_DIR=/data

# The app runs as csu. Its supplementary group has gid 1883, the gid of the mosquitto
# user in the eclipse-mosquitto image, so the broker's password and ACL files that the
# app writes into the shared /mosquitto/auth volume may be mode 0640, group 1883:
# readable by the broker and no one else (deploy/mosquitto/README.md).
RUN groupadd --system --gid 1883 mosquitto \
 && groupadd --system --gid 10001 csu \
 && useradd --system --uid 10001 --gid csu --groups mosquitto \
        --home-dir /app --no-create-home --shell /usr/sbin/nologin csu

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock file changes.
RUN pip install "uv==${UV_VERSION}"
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .

# Translations. Babel (a dependency) instead of gettext's msgfmt, which is not in the
# slim image. `pybabel` rather than `python -m babel.messages.frontend`: the latter
# exits 0 even when a catalog has errors. A tree with no catalogs yet builds fine.
RUN set -eu; \
    for dir in $(find . -path ./.venv -prune -o -type d -name locale -print); do \
        for domain in django djangojs; do \
            if ls "$dir"/*/LC_MESSAGES/"$domain".po >/dev/null 2>&1; then \
                pybabel compile --statistics -d "$dir" -D "$domain"; \
            fi; \
        done; \
    done

# Static files into $CSU_DATA_DIR/static (STATIC_ROOT), served by WhiteNoise from the
# image. The key exists for this step only; do not mount a volume over /data/static,
# it would hide the files of newer images.
RUN DJANGO_SECRET_KEY=collectstatic-build-step-only python manage.py collectstatic --noinput

# /data: the app's data directory (only static files when DATABASE_URL is set).
# /mosquitto/auth: the mount point of the mosquitto-auth volume; an empty named volume
# takes this directory's owner and mode when first mounted.
RUN mkdir -p /mosquitto/auth \
 && chown csu:mosquitto /mosquitto/auth \
 && chmod 0750 /mosquitto/auth \
 && chown -R csu:csu /data

USER csu

EXPOSE 8000

# No HEALTHCHECK here: the same image runs ingest and Celery, which serve no HTTP;
# docker-compose.yml checks web on /healthz. No per-message deflate on the websockets:
# the live events are small, and compressing each for each page made an activation's
# 2,000 pages wait (bench/ppms_fanout.py: p99 650-870 ms with it, 465-470 ms without).
CMD ["uvicorn", "csu.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--proxy-headers", "--workers", "2", "--ws-per-message-deflate", "false"]
