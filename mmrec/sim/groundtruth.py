"""Compare a recorded take with the simulator's ground truth (tests and benchmarks).

Every simulated frame carries ``mmcam-sim node=… frame=… true_ns=…`` (the capture instant
on the host's CLOCK_REALTIME). Matched with the take's index, that says how far each
frame's time on the take timeline is from the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from mmrec.sim.record import sim_record
from mmrec.store.index import read_index
from mmrec.store.take import CameraEntry, Manifest


@dataclass(frozen=True, slots=True)
class AlignmentError:
    """Per camera: errors (ns) of ``time_ns`` against the true capture time."""

    camera: str
    frames: int  # judged (after warm-up)
    warmup_frames: int
    median_abs_ns: float
    p99_abs_ns: float
    max_abs_ns: float
    mean_ns: float  # signed bias


def frame_truth(take_dir: Path, cam: CameraEntry) -> list[tuple[int, int, int]]:
    """(sim frame number, true_ns, time_ns) for each recorded frame, in order."""
    truth: list[tuple[int, int]] = []
    for seg in cam.segments:
        with av.open(str(take_dir / seg)) as c:
            for p in c.demux(video=0):
                if p.size:
                    rec = sim_record(bytes(p))
                    if rec is None:
                        raise ValueError(f"{seg}: a frame without the simulator's record")
                    truth.append((rec.frame, rec.true_ns))
    rows = list(read_index(take_dir / cam.index))
    n = min(len(rows), len(truth))
    return [(truth[i][0], truth[i][1], rows[i].time_ns) for i in range(n)]


def alignment_errors(take_dir: Path, manifest: Manifest) -> list[AlignmentError]:
    out = []
    for cam in manifest.cameras:
        data = frame_truth(take_dir, cam)
        warm = cam.clock.warmup_frames if cam.clock else 0
        judged = data[warm:]
        err = np.array(
            [t - (true - manifest.start_realtime_ns) for _, true, t in judged], dtype=np.float64
        )
        a = np.abs(err)
        out.append(
            AlignmentError(
                cam.name,
                len(judged),
                warm,
                float(np.median(a)) if a.size else float("nan"),
                float(np.percentile(a, 99)) if a.size else float("nan"),
                float(a.max()) if a.size else float("nan"),
                float(err.mean()) if a.size else float("nan"),
            )
        )
    return out
