"""Stage recipes. Each module has ``run(cfg) -> Path``; adding a stage is one file plus one entry here.

``pipeline.run`` chains the stages for ``hierarchy run --stage all``.
"""

from stages import coarse, detect, fine

STAGES = {"coarse": coarse.run, "fine": fine.run, "detect": detect.run}
