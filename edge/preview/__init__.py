"""The live preview: what the running pipeline sees, for people, in a local web page.

- tap.py: inside each pipeline process (only with `mestream run --preview` or [publish] preview): a
  low-rate, latest-only, never-blocking copy of frames (JPEG), aligned crops, the spotter's motion signal
  and threshold, and the events, on a PUB socket.
- relay.py: in the supervisor, joins every process's tap into one endpoint bound to loopback/ipc.
- state.py: what a viewer keeps of that stream (latest frame, signal history, last events).
- server.py: the web page (http.server on 127.0.0.1) fed by a ZeroMQ SUB; `mestream preview` runs it.
"""

DEFAULT_PREVIEW_ENDPOINT = "tcp://127.0.0.1:5561"
PREVIEW_TOPIC_PREFIX = "pv."
