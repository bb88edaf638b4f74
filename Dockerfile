# syntax=docker/dockerfile:1
# modelmon image: the exporter in a virtual environment on a slim Python base.
#
#   docker build -t modelmon .
#   docker run --rm -p 9847:9847 modelmon                      # demo traffic
#   docker run --rm -p 9847:9847 -v "$PWD/conf:/etc/modelmon:ro" \
#       modelmon serve --config /etc/modelmon/modelmon.yaml     # your models
#
# EXTRAS picks the optional features: gpu (NVML bindings, pure Python; the driver
# library comes from the host through the NVIDIA container runtime), fast (orjson),
# redis (the client for labels.store: redis://..., pure Python).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: install the package and its dependencies into /opt/modelmon ----------------
FROM ${PYTHON_IMAGE} AS build
ARG EXTRAS=gpu,fast,redis
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/modelmon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN /opt/modelmon/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/modelmon/bin/pip install "$(ls /wheels/modelmon-*.whl)[${EXTRAS}]" \
 && /opt/modelmon/bin/python -m pip uninstall --yes pip

# --- runtime: the virtual environment only, as an unprivileged user --------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="modelmon" \
      org.opencontainers.image.description="ML model monitoring exporter for Prometheus" \
      org.opencontainers.image.licenses="Apache-2.0"
# uid/gid 10001: not root, and not a uid that exists on typical hosts. In Kubernetes
# run the model container with the same uid so the process collector can read its
# /proc entries (open file descriptors) through the shared process namespace.
RUN groupadd --system --gid 10001 modelmon \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/modelmon --shell /usr/sbin/nologin modelmon \
 && install --directory --owner 10001 --group 10001 /var/lib/modelmon
COPY --from=build /opt/modelmon /opt/modelmon
# MALLOC_ARENA_MAX: glibc gives each handler thread its own malloc arena otherwise, tens
# of MiB of resident memory under concurrent load (docs/reliability.md).
ENV PATH=/opt/modelmon/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    MODELMON_HEALTHCHECK_URL=http://127.0.0.1:9847/healthz
USER 10001:10001
WORKDIR /var/lib/modelmon
EXPOSE 9847
# The slim base has no curl: probe /healthz with the standard library. Override
# MODELMON_HEALTHCHECK_URL when --listen uses another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['MODELMON_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["modelmon"]
CMD ["demo", "--listen", "0.0.0.0:9847"]
