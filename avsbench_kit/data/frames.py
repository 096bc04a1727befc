"""The synthetic benchmark as a torch dataset, made on the fly in memory, and the batch collation."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from avsbench_kit.audio import SAMPLE_RATE, waveform_to_examples
from avsbench_kit.data.avsbench import normalise_rgb


class SyntheticFrames(torch.utils.data.Dataset):
    """The synthetic benchmark in memory: every frame of ``videos`` videos of one split, made on the
    fly; ``limit`` keeps only the split's first ``limit`` videos (a smaller test split for quick runs)."""

    def __init__(self, subset: str, split: str, videos: int, size: int = 224, seed: int = 0, limit: int | None = None,
                 front_end: str = "vggish"):
        from avsbench_kit.data.synthetic import FRAMES_PER_VIDEO, split_of

        self.subset, self.size, self.seed, self.front_end = subset, size, seed, front_end
        frames = [1] if subset == "s4" and split == "train" else range(FRAMES_PER_VIDEO)  # S4 train: frame 1 only
        chosen = [v for v in range(videos) if split_of(v, videos) == split][:limit]
        self.items = [(v, f) for v in chosen for f in frames]

    def __len__(self) -> int:
        return len(self.items)

    def _frame(self, n: int):
        from avsbench_kit.data.synthetic import synthetic_frame

        video, frame = self.items[n]
        return synthetic_frame(self.subset, self.seed, video, frame, self.size)

    def audio(self, n: int) -> Tensor:
        """Frame ``n``'s model input ``[1, 96, 64]``: its own second of audio through the front end."""
        return self._audio(self._frame(n).waveform)

    def sounding_label(self, n: int) -> tuple[str, ...]:
        """What frame ``n``'s audio is the sound of: its sounding classes (no frame is rendered)."""
        from avsbench_kit.data.synthetic import sounding_classes

        return sounding_classes(self.subset, self.seed, self.items[n][0])

    def _audio(self, waveform: np.ndarray) -> Tensor:
        if self.front_end == "cavp":  # a synthetic frame carries its own second: CAVP's transform of it (no clip crop)
            from avsbench_kit.audio_cavp import log_mel

            return log_mel(torch.from_numpy(waveform))
        return waveform_to_examples(waveform, SAMPLE_RATE)[:1]

    def __getitem__(self, n: int) -> tuple[Tensor, Tensor, Tensor, dict]:
        f = self._frame(n)
        image = normalise_rgb(f.image)
        audio = self._audio(f.waveform)
        mask = torch.from_numpy(f.mask.astype(np.int64)) if self.subset == "avss" else torch.from_numpy(f.mask.astype(np.float32))
        video, frame = self.items[n]
        return image, audio, mask, {"video": video, "frame": frame}


def collate(batch: list) -> tuple[Tensor, Tensor, Tensor]:
    images, audios, masks, _ = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(audios), torch.stack(masks)
