"""A job class for the launcher tests, importable by the job processes (PYTHONPATH has tests/)."""

import os
import signal
import time

from avskit.analyses.launch import TrainJob


class TimingOutJob(TrainJob):
    """The first attempt of the variant ``TIMES_OUT`` gets, right after step 1 is checkpointed, the
    signal the launcher sends before a job's time limit (USR2), as if its time had run out there:
    submitit's handler (with a limit under 10 minutes every such signal counts as a timeout) calls
    ``checkpoint()`` and requeues. Sent by the job itself so that the test does not depend on how
    fast the machine reaches step 1."""

    TIMES_OUT = "avesformer-r18"

    def on_step(self, step: int, loss: float) -> None:
        super().on_step(step, loss)
        if self.attempt == 0 and step == 1 and self.task.label == self.TIMES_OUT:
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(60)  # the handler ends this attempt


def note_and_sleep(out: str, seconds: float, provenance: dict, on_step=None) -> dict:
    """A job that only says when it ran, with how many threads, then sleeps: for the local cap's test."""
    import json
    import time

    import torch

    start = time.time()
    time.sleep(seconds)
    line = {"start": start, "end": time.time(), "threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS"),
            "run_id": provenance["run_id"]}
    with open(out, "a") as f:
        f.write(json.dumps(line) + "\n")
    return line
