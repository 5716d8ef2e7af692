# syntax=docker/dockerfile:1
# kubestream image: the events collector and the logs node agent (same image, different config).
#   docker build -t REGISTRY/kubestream:0.1.0 .
# Two stages: the builder makes the wheel and a virtualenv; the runtime stage copies only that
# virtualenv onto a clean slim Python, so no compiler, pip cache or source tree ships.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Every runtime dependency ships manylinux wheels for amd64/arm64, so nothing is compiled here;
# a platform without them would need build tools in this stage only, never in the runtime one.
COPY pyproject.toml README.md ./
COPY src ./src
# pip/setuptools are installers, not needed to run: they are removed from the virtualenv.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/kubestream \
 && /opt/kubestream/bin/pip install /wheels/kubestream-*.whl \
 && /opt/kubestream/bin/pip uninstall --yes pip setuptools

# ---- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kubestream" \
      org.opencontainers.image.description="Kubernetes Events and container logs into an exactly-once archive" \
      org.opencontainers.image.licenses="Apache-2.0"
# PYTHONDONTWRITEBYTECODE: the root filesystem is mounted read-only, so nothing may try to write
# .pyc files at run time (they were compiled at install time in the builder). HOME=/tmp: the
# only other writable place is the /tmp volume, for any library that wants a home directory.
ENV PATH=/opt/kubestream/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# The base image's own installer is not needed either; the runtime user owns only its state dir.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
 && groupadd --system --gid 10001 kubestream \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/kubestream \
      --shell /usr/sbin/nologin kubestream \
 && mkdir -p /etc/kubestream /var/lib/kubestream \
 && chown 10001:10001 /var/lib/kubestream
COPY --from=builder /opt/kubestream /opt/kubestream
# Relative defaults (state.dir ./kubestream-state, sink.file.dir ./kubestream-out, e.g. from a
# k8stream config.json) land here, where the manifests mount a volume.
WORKDIR /var/lib/kubestream
# Non-root by default (the events collector). The logs DaemonSet overrides this with uid 0
# because kubelet's log files are root-owned 0640 (see deploy/kubernetes/60-logs-daemonset.yaml).
USER 10001:10001
EXPOSE 9102
# Docker's own health check for `docker run`; Kubernetes ignores it and uses the manifests'
# livenessProbe (/healthz) and readinessProbe (/readyz) on the same port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9102/healthz', timeout=4)"]
ENTRYPOINT ["kubestream"]
CMD ["run", "--config", "/etc/kubestream/kubestream.yaml"]
