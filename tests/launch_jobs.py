"""A job class for the launcher tests, importable by the job processes (PYTHONPATH has tests/)."""

import time

from avskit.analyses.launch import TrainJob


class PausingJob(TrainJob):
    """Its first attempt of the variant ``PAUSE`` stops after step 1 (checkpointed) and waits for the
    launcher's warning signal: the timeout path of a preempted or timed-out job."""

    PAUSE = "avesformer-r18"

    def on_step(self, step: int, loss: float) -> None:
        super().on_step(step, loss)
        if self.attempt == 0 and step == 1 and self.task.label == self.PAUSE:
            time.sleep(600)
