"""Stage recipes. Each module has ``run(cfg) -> Path``; adding a stage is one file here plus its entry in
``hierarchy.config.STAGES`` (its help and the settings it reads).

``pipeline.run`` chains the stages for ``hierarchy run --stage all``.
"""

import importlib

from hierarchy import config

# The stages are config.STAGES (the settings' one list of them); the recipe of each is the module of that name.
STAGES = {name: importlib.import_module(f"stages.{name}").run for name in config.STAGES}
