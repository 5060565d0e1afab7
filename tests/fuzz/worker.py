"""The long-lived worker: reads one JSON request per line (``{"argv": [...]}``), runs the CLI's
``main`` in this process and answers one JSON line (code, stdout, stderr, any escaped exception).

Importing jax costs seconds; one worker serves every case. Replies go to a private copy of the
original stdout; file descriptor 1 is pointed at stderr so that nothing native can corrupt the
protocol. Warnings about coroutines Orbax leaves behind (``sys.unraisablehook``) go to the worker's
own stderr, never into a case's captured output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import traceback


def serve() -> None:
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), write_through=True)
    real_stderr = sys.stderr
    sys.unraisablehook = lambda hook: print(f"[unraisable] {hook.exc_type.__name__}: {hook.exc_value}",
                                            file=real_stderr)
    from inspector.__main__ import main

    reply.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        escaped = None
        started = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(request["argv"])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:  # noqa: B036 - any escape is the finding
            code, escaped = None, traceback.format_exc()
        reply.write(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(), "exc": escaped,
                                "seconds": time.perf_counter() - started}) + "\n")


if __name__ == "__main__":
    serve()
