# showrunner in a container, next to a Daydream Scope server.
#
#   docker build -t showrunner .
#   docker run -d --restart unless-stopped --name gallery \
#     -v "$PWD/shows:/shows:ro" -v showrunner-state:/state -p 8765:8765 \
#     -e SHOWRUNNER_CONTROL_TOKEN=choose-one showrunner \
#     run /shows/gallery.yaml --scope http://scope:8000 --resume \
#         --state-file /state/gallery.state.json --journal /state/gallery.jsonl \
#         --journal-max-size 50MB --control-host 0.0.0.0
#
# The show folder can be read-only: the resume state and the journal go to /state. The control
# page, /api/health and /metrics listen on 8765; bound to 0.0.0.0 they need the token, which the
# health check below sends. docs/operating.md ("Docker") has a compose file beside Scope.
FROM python:3.11-slim

# ALSA's library for MIDI (python-rtmidi); aiortc and PyAV bring their codecs in their wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libasound2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/showrunner
COPY pyproject.toml README.md ./
COPY showrunner ./showrunner
RUN pip install --no-cache-dir . \
    && useradd --system --create-home --uid 10001 showrunner \
    && mkdir -p /state /shows && chown showrunner /state

USER showrunner
WORKDIR /shows
VOLUME ["/state"]
EXPOSE 8765
ENV PYTHONUNBUFFERED=1

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 CMD \
    python -c "import os, urllib.request as u; r = u.Request('http://127.0.0.1:8765/api/health', headers={'Authorization': 'Bearer ' + os.environ.get('SHOWRUNNER_CONTROL_TOKEN', '')}); u.urlopen(r, timeout=4)"

ENTRYPOINT ["showrunner"]
CMD ["run", "/shows/show.yaml", "--resume", "--state-file", "/state/show.state.json", \
     "--journal", "/state/show.jsonl", "--journal-max-size", "50MB", \
     "--control-host", "0.0.0.0", "--control-port", "8765"]
