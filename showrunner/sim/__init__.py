"""A Scope server simulator: the same REST + WebRTC contract as Daydream Scope 0.2.4, no GPU.

It answers on 127.0.0.1 like the real server, traps included (`error` reported once, no
video without `initialParameters.pipeline_ids`, an 8-deep parameter queue that drops the
newest update, one update applied per chunk, ...), renders frames that show what it believes
its state is, and records everything it receives.
WebRTC never leaves the loopback interface.

    async with serve_sim(port=0) as sim:        # a running Simulator
        ...                                     # talk to sim.url
        await sim.restart(down_for=1.0)         # crash and come back on the same port
        await sim.shutdown()                    # SIGTERM: `stream_stopped`, then down

Beyond WebRTC sessions it has the headless session of `POST /api/v1/session/start`
(`sim.headless`, docs/scope.md §2.8, §10.1), the tempo endpoints and `tempo_update` messages
(`sim.tempo`, docs/scope.md §6), and `video_file` input sources decoded with PyAV (docs/scope.md §7).

Fault knobs (`sim.faults`, settable at any time): `load_time` (seconds per load, None =
realistic), `fail_loads` (pipeline ids whose load ends in `error`, or True), `chunk_delay`
(extra seconds per chunk), `stale_status` (seconds the status keeps its pre-load answer),
`download_time` (`stale_status` defaults to 0: a real server's first poll after a load
already reads `loading`, docs/scope.md §10).

Record format
-------------
`sim.records` holds one dict per HTTP request and per data-channel message, in arrival
order (an HTTP request is stored when its answer starts, so `status` is known). With
`record_path`, the same dicts are written as JSON lines to that file (created afresh), each
line flushed as it arrives. Common keys:

- `kind`: `"http"` or `"data"`
- `received_at`: arrival time, Unix seconds (float, `time.time()`)

`kind == "http"` adds:

- `method`: `"GET"`, `"POST"`, ...
- `path`: the URL path, e.g. `"/api/v1/pipeline/load"`
- `query`: the query string as a `{name: value}` object
- `headers`: request headers with lower-cased names (`{"authorization": "Bearer ..."}`)
- `status`: the HTTP status code of the answer
- `json`: the parsed JSON body, or null when the body is empty or not JSON; for
  `POST /api/v1/webrtc/offer` the raw `sdp` is left out (`type` and `initialParameters` stay)
- `body_size`: request body length in bytes

`kind == "data"` adds:

- `session_id`: the `sessionId` the offer returned
- `label`: the data channel's label (normally `"parameters"`)
- `message`: the parsed JSON value as received, or the raw text when it was not valid JSON

Example lines (each is one line in the file; wrapped here):

    {"kind": "http", "received_at": 1767225600.12, "method": "POST",
     "path": "/api/v1/pipeline/load", "query": {}, "headers": {"content-type": "application/json"},
     "status": 200, "json": {"pipeline_ids": ["longlive"], "load_params": {"height": 320}},
     "body_size": 58}
    {"kind": "data", "received_at": 1767225603.5, "session_id": "0b6c...", "label": "parameters",
     "message": {"transition": {"target_prompts": [{"text": "a fox", "weight": 1.0}],
                                "num_steps": 4}}}
"""

from __future__ import annotations

from showrunner.sim.loads import Faults
from showrunner.sim.session import SimSession
from showrunner.sim.simulator import SimThread, Simulator, serve_forever, serve_sim

__all__ = ["Faults", "SimSession", "SimThread", "Simulator", "serve_forever", "serve_sim"]
