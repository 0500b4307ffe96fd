"""Stage two: fine heads transfer-learned from the coarse checkpoint, decoded consistently with it.

The network (``model.backbone``, ``model.stem_pool``, ``model.channels``) is the coarse run's: ``settings`` reads
it from the checkpoint that ``init_from`` names, so a fine config need not repeat it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch import nn

from hierarchy.checkpoint import load_checkpoint, transfer_weights
from hierarchy.config import Config, load_config
from hierarchy.engine import fit
from hierarchy.errors import UserError
from hierarchy.paths import newest_run
from hierarchy.taxonomy import Taxonomy, build_taxonomy
from hierarchy.training import build_data, build_network, open_run, report

log = logging.getLogger(__name__)
NETWORK = ("backbone", "stem_pool", "channels")  # the model.* keys that shape the backbone: the coarse run's


def network_of(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``model.backbone``, ``model.stem_pool`` and ``model.channels``."""
    model = {"stem_pool": True, "channels": [], **state["config"]["model"]}  # older checkpoints lack the last two
    return {key: model[key] for key in NETWORK}


def settings(
    config_file: str | Path | None = None, overrides: list[str] | None = None, init_from: str | None = None
) -> Config:
    """The fine stage's settings: defaults < the network of the coarse checkpoint it starts from < the YAML file
    (``configs/fine.yaml`` or ``config_file``) < ``overrides``; ``init_from`` replaces that setting (the default
    job gives its coarse run).

    A network set in the YAML file or the overrides to another value than the checkpoint's is refused by
    ``initialise``. With ``init_from=none`` (or no coarse run yet, or a checkpoint of another stage, which
    ``initialise`` then refuses) the network is the stage's own settings.
    """
    cfg = load_config("fine", config_file, overrides)
    if init_from is not None:
        cfg.init_from = init_from
    source = None if cfg.init_from == "none" else cfg.init_from or newest_run("coarse")
    state = load_checkpoint(source) if source else None
    if state is None or state.get("stage") != "coarse":
        return cfg
    chosen = load_config("fine", config_file, overrides, base={"model": network_of(state)})
    chosen.init_from = cfg.init_from
    return chosen


def heads(taxonomy: Taxonomy) -> dict[str, int]:
    """Coarse + fine heads; data that labels attributes instead (Fashion-How) gets one head per attribute."""
    if taxonomy.attributes:
        return {head: len(names) for head, names in taxonomy.attributes.items()}
    return {"coarse": taxonomy.num_classes("coarse"), "fine": taxonomy.num_classes("fine")}


def initialise(model: nn.Module, cfg: Config, taxonomy: Taxonomy) -> None:
    """Copy the backbone and the coarse head from the coarse checkpoint; log what moved, what is new.

    ``init_from=none`` trains from scratch instead (the flat baseline of the benchmark).
    """
    if cfg.init_from == "none":
        log.info("init_from=none: nothing transferred; the backbone keeps its own (ImageNet if pretrained) weights")
        return
    source = cfg.init_from or newest_run("coarse")
    if source is None:
        raise UserError(
            "no coarse run found in artifacts/coarse/: run `hierarchy run --stage coarse` first, "
            "or set init_from=RUN_DIR_OR_CHECKPOINT (init_from=none starts from the backbone's own weights)"
        )
    state = load_checkpoint(source)
    if state.get("stage") != "coarse":
        raise UserError(
            f"init_from={source} is a {state.get('stage')!r} checkpoint; the fine stage starts from a "
            "coarse checkpoint (artifacts/coarse/<run>)"
        )
    theirs = build_taxonomy(state["taxonomy"], source=f"checkpoint {state['path']}")
    if theirs.coarse != taxonomy.coarse:
        raise UserError(
            f"init_from={source} was trained on taxonomy '{theirs.name}' with coarse classes {list(theirs.coarse)}, "
            f"but this run uses '{taxonomy.name}' with {list(taxonomy.coarse)}. Use a coarse run of the same taxonomy."
        )
    network = network_of(state)
    for key in NETWORK:  # the architecture must match for the features to mean the same
        if network[key] != getattr(cfg.model, key):
            raise UserError(
                f"init_from={source} has model.{key}={network[key]!r} but this run has "
                f"model.{key}={getattr(cfg.model, key)!r}: the fine stage builds the coarse run's network, so leave "
                f"model.{key} out (or start from a coarse run trained with it)"
            )
    report = transfer_weights(model, state["model"])
    log.info(
        "transferred %d tensors from %s (backbone + coarse head); new: %s; shape mismatch: %s; unused: %s",
        len(report["transferred"]),
        state["path"],
        report["new"] or "none",
        report["shape_mismatch"] or "none",
        report["unused"] or "none",
    )


def main_metric(heads: dict[str, int]) -> str:
    """Validation fine top-1; for attribute heads their mean per-class accuracy (Fashion-How's ACSA, which
    heavy class imbalance cannot inflate)."""
    return "val/fine_top1" if "fine" in heads else "val/mean_acsa"


def run(cfg: Config, hooks: tuple = ()) -> Path:
    """Train the fine heads (or attribute heads), starting from the coarse stage; returns the run folder.
    ``hooks`` go to ``engine.fit`` (an audit's margin tracker)."""
    with open_run(cfg) as run:
        model = build_network(run, heads(run.taxonomy), initialise)
        train_set, val_set = build_data(run)
        final = fit(model, train_set, val_set, run, main_metric(heads(run.taxonomy)), hooks)
        return report(run, final, train_set, val_set)
