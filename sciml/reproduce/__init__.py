"""One reproduction command per paper: ``python -m sciml.reproduce PAPER --scale {smoke,cpu,paper}``.

Each paper's comparison (LSM vs FNO on rollouts, T1 vs FNO error and speed, ...) is trained from the
faithful configs of ``configs/paper/`` with the paper's protocol; a smaller scale changes only the data
size, the epochs and, where unavoidable, the resolution or the width, equally for both sides
(:mod:`sciml.reproduce.protocol`). The result is a JSON record, a markdown table with the paper's published
number beside ours, and a PNG of the learning curves (:mod:`sciml.reproduce.runner`). The papers are
defined in :mod:`sciml.reproduce.papers`.
"""

from sciml.reproduce.papers import PAPERS
from sciml.reproduce.protocol import SCALES, Claim, Paper, Published, Scale, Side
from sciml.reproduce.runner import markdown, reproduce

__all__ = ["PAPERS", "SCALES", "Claim", "Paper", "Published", "Scale", "Side", "markdown", "reproduce"]
