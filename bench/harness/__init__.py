"""Shared pieces of the benchmarks: a private moto server, provisioning, a fake Lambda Runtime API,
spawning a function process and timing it, a pool of concurrent instances of one function, SQS
signup events, statistics.

Used by coldstart.py, roundtrips.py and scale.py (run them with the project's .venv/bin/python).
Nothing here is imported by the project itself; it only talks to 127.0.0.1.
"""

from .common import *  # noqa: F401,F403
from .stack import *  # noqa: F401,F403
from .events import *  # noqa: F401,F403
from .runtime_api import *  # noqa: F401,F403
from .process import *  # noqa: F401,F403
from .report import *  # noqa: F401,F403
