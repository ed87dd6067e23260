"""`python tests/hold_job.py RELEASE ARGS...`: `python -m binary_encoding.train ARGS...` whose every job,
once it holds its folder (job.lock written), waits until the file RELEASE exists: a second process can
then be started while the folder is certainly held, without guessing how long a job takes."""

import sys
import time
from pathlib import Path

from binary_encoding.run import fit

release = Path(sys.argv.pop(1))
_train = fit._train


def held(cfg, out, callbacks):
    give_up = time.monotonic() + 900  # a test that died without releasing must not leave this process behind
    while not release.exists():  # a signal from the test, polled; not a guessed delay
        if time.monotonic() > give_up:
            raise SystemExit(f"hold_job: {release} never appeared")
        time.sleep(0.05)
    return _train(cfg, out, callbacks)


fit._train = held

from binary_encoding.train import main  # noqa: E402  after the patch, as the entry point would be

main()
