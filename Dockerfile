# Small non-root image: the wheel is built in a throwaway stage, only site-packages are kept.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock requirements-otel.lock ./
COPY realtime_proxy ./realtime_proxy
# The locked, hash-checked set the tests ran on, then the project itself ('.') without resolving again.
# Extras: `--build-arg EXTRAS=fast,otel` installs requirements-otel.lock instead, which adds
# OpenTelemetry trace export (see docs/observability.md, Traces); `fast` (uvloop) is in both locks.
ARG EXTRAS=fast
# hadolint ignore=DL3013
RUN lock=requirements.lock; case ",${EXTRAS}," in *,otel,*) lock=requirements-otel.lock ;; esac; \
    pip install --no-cache-dir --prefix=/install --require-hashes -r "$lock" \
    && pip install --no-cache-dir --prefix=/install --no-deps .

FROM python:3.11-slim
COPY --from=build /install /usr/local
COPY config/proxy.toml /etc/realtime-proxy/proxy.toml
# Debian images already have a `proxy` user (uid 13): this name is free.
RUN useradd --system --uid 10001 --no-create-home realtime-proxy
USER 10001
ENV PYTHONUNBUFFERED=1
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]
ENTRYPOINT ["realtime-proxy"]
CMD ["--config", "/etc/realtime-proxy/proxy.toml"]
