"""Command line: ``hierarchy run --stage coarse|fine|detect|all``, ``hierarchy eval --model RUN``,
``hierarchy detect PATH... --out FILE``, ``hierarchy label PATH... --model RUN --out FILE``,
``hierarchy audit --stage fine``, ``hierarchy serve --model RUN [--labels FILE] [--pool PHOTOS]``,
``hierarchy suggest --model RUN --pool PHOTOS --budget N --out queue.csv``, ``hierarchy retrain --model RUN --db FILE``,
``hierarchy corrections export --db FILE --out manifest.csv``.

Sub-commands live in one dispatch table; mistakes a user can fix print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from hierarchy import config
from hierarchy.active import commands as active_commands
from hierarchy.config import help_text, parse_overrides, refuse_ignored, setting_choices, setting_help, split_words
from hierarchy.errors import UserError

EPILOG = "Settings are key=value pairs, e.g. train.epochs=5 model.backbone=resnet18; --help-config lists them all."


LABEL_FLAGS = [
    ("--device", "device", str),
    ("--batch-size", "batch_size", int),
    ("--workers", "workers", int),
    ("--crop", "crop", str),
    ("--views", "views", str),
    ("--tta-shift", "tta_shift", int),
    ("--chunk", "chunk", int),
    ("--min-prob", "min_prob", float),
    ("--precision", "precision", str),
]


def stage_settings(stage: str, config_file: str | None, settings: list[str]) -> config.Config:
    """A stage's settings; the fine stage's network is the coarse checkpoint's (``stages.fine.settings``)."""
    from stages import fine

    return fine.settings(config_file, settings) if stage == "fine" else config.load_config(stage, config_file, settings)


def cmd_run(args: argparse.Namespace) -> int:
    from stages import STAGES, pipeline

    if args.stage == "all":
        if args.config:
            raise UserError(
                "--config is per stage; with --stage all put settings in configs/coarse.yaml and configs/fine.yaml"
            )
        pipeline.run(args.settings, run_dir=args.run_dir)
        return 0
    cfg = stage_settings(args.stage, args.config, args.settings)
    if args.run_dir:
        cfg.run_dir = args.run_dir
    run_dir = STAGES[args.stage](cfg)
    print(run_dir)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from stages import audit

    cfg = stage_settings(args.stage, args.config, args.settings)
    if args.run_dir:
        cfg.run_dir = args.run_dir
    print(audit.run(cfg))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Without ``--split``: the test split, or validation when the data has none (the report says so and how to
    add one; exit 0, also when nothing was held out). ``--split test`` on data without one: exit 2."""
    from hierarchy.report import evaluate_run, format_report

    report, out = evaluate_run(args.model, args.split, args.out, args.device, args.settings, args.min_prob,
                               precision=args.precision, latency=args.latency)  # fmt: skip
    print(format_report(report))
    if out:
        print(f"report files in {out}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hierarchy.report import evaluate_run, format_report

    if args.split == "test":
        raise UserError("fit temperatures on validation (--split val), never on the test split that measures them")
    report, out = evaluate_run(args.model, args.split, args.out, args.device, args.settings, calibrate=True,
                               precision=args.precision)  # fmt: skip
    print(format_report(report))
    print(f"temperatures {report['calibration']['temperatures']} stored in {report['checkpoint']}; report in {out}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from hierarchy.config import load_detect_config
    from hierarchy.detect.output import detect_to_file
    from hierarchy.runner import select_device

    if not args.paths:
        raise UserError("give at least one image file or folder: hierarchy detect PHOTOS/ --out found.csv")
    cfg = load_detect_config(args.settings)
    counts = detect_to_file(args.paths, args.out, cfg, str(select_device(args.device)), args.preview)
    print(
        f"{counts['images']} images: {counts['people']} people, {counts['no_person']} with no person "
        f"(whole image kept), {counts['unreadable']} unreadable → {args.out}"
    )
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from hierarchy.config import label_options, load_detect_config
    from stages import label

    detect = load_detect_config(args.settings) if args.settings else None
    flags = {"out": args.out, "device": args.device, "batch_size": args.batch_size, "workers": args.workers}
    flags |= {"crop": args.crop, "chunk": args.chunk, "tta_shift": args.tta_shift, "min_prob": args.min_prob}
    flags |= {"views": args.views, "precision": args.precision}
    options = label_options({k: v for k, v in flags.items() if v is not None})
    summary = label.run(paths=args.paths, models=args.model, options=options, detect=detect)
    if summary["rows_in_output"] or summary["errors_in_output"] or summary["images"]:
        print(
            f"{summary['images']} images labelled ({summary['skipped_done']} already done), {summary['crops']} crops, "
            f"{summary['errors']} errors in {summary['seconds']} s ({summary['images_per_s']} images/s) → {args.out}"
        )
    if summary["errors_in_output"]:
        errors = Path(args.out).with_name(Path(args.out).stem + ".errors.csv")
        print(f"{summary['errors_in_output']} files could not be read: see {errors}", file=sys.stderr)
        return 3  # finished, but not every image has labels
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hierarchy.infer.onnx import export_onnx

    if args.format != "onnx":
        raise UserError(f"--format {args.format}: onnx is the one export format")
    onnx_path, json_path = export_onnx(args.model, args.out, args.views, args.tta_shift)
    print(f"{onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {json_path}")
    print(f"label with it: hierarchy label PHOTOS/ --model {onnx_path} --out labels.csv")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hierarchy.serve import build_app

    app = build_app(
        args.model,
        args.labels,
        args.db,
        args.token,
        args.device,
        args.max_upload_mb,
        crop=args.crop,
        precision=args.precision,
        pool=args.pool,
        queue_settings=args.settings,
        groups=args.groups,
    )
    address = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"hierarchy serve: WARNING: listening on {args.host}: anyone who can reach this machine can see the "
            "photos and write corrections" + ("" if args.token else "; add --token SECRET to require a token"),
            file=sys.stderr,
        )
    suffix = f"?token={args.token}" if args.token else ""
    pages = f"review: {address}review{suffix}" + (f", label: {address}label{suffix}" if args.pool else "")
    print(f"hierarchy serve: open {address}{suffix}  ({pages}); Ctrl+C stops", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_corrections(args: argparse.Namespace) -> int:
    from hierarchy.serve.corrections import CorrectionStore, export_manifest

    if not Path(args.db).is_file():
        raise UserError(
            f"{args.db} not found: give the --db file of `hierarchy serve` (default LABELS.corrections.sqlite)"
        )
    n = export_manifest(CorrectionStore(args.db), args.out)
    print(
        f"{n} reviewed crops → {args.out} (train on them: "
        f"hierarchy run --stage fine data.format=csv data.root={args.out})"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hierarchy", description="Hierarchical fashion image classifier and labeler.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a stage (coarse, fine, or all = coarse → fine → test)", epilog=EPILOG)
    run.add_argument(
        "--stage",
        default="all",
        choices=[*config.STAGES, "all"],
        help=f"{' | '.join(config.STAGES)} | all (default: all = coarse → fine → test)",
    )
    run.add_argument("--config", help="YAML file instead of configs/<stage>.yaml")
    run.add_argument(
        "--run-dir",
        help="run folder, exactly, as the run_dir setting; this flag wins over it (default "
        "artifacts/<stage>/<timestamp>; with --stage all the job's folder, holding coarse/ and fine/)",
    )
    run.add_argument("--help-config", action="store_true", help="list every config key and exit")
    run.add_argument("words", nargs="*", metavar="key=value")
    run.set_defaults(func=cmd_run)

    aud = sub.add_parser(
        "audit",
        help="rank training labels by Area-Under-the-Margin over a short run; writes suspect_labels.csv",
        epilog=EPILOG,
    )
    aud.add_argument(
        "--stage", default="fine", choices=config.AUDITED, help="the stage whose labels to audit (default fine)"
    )
    aud.add_argument("--config", help="YAML file instead of configs/<stage>.yaml")
    aud.add_argument(
        "--run-dir", help="audit folder, exactly, as run_dir; this flag wins over it (default artifacts/audit/<ts>)"
    )
    aud.add_argument("words", nargs="*", metavar="key=value")
    aud.set_defaults(func=cmd_audit)

    ev = sub.add_parser("eval", help="evaluate a model on the held-out test split", epilog=EPILOG)
    ev.add_argument("--model", required=True, help="run folder or checkpoint file")
    ev.add_argument(
        "--split", choices=["test", "val"], help="test or val (default: test, or val when the data has no test split)"
    )
    ev.add_argument("--out", help="report folder (default: <run>/<split>)")
    ev.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ev.add_argument(
        "words",
        nargs="*",
        metavar="key=value",
        help="data.*, detect.*, hierarchy.* or model.tta_*, e.g. data.root=DIR hierarchy.rule=mask model.tta_shift=1",
    )
    ev.add_argument("--min-prob", type=float, default=0.0, help="also report abstention at this probability")
    ev.add_argument(
        "--precision", default="fp32", choices=setting_choices("label.precision"), help=setting_help("label.precision")
    )
    ev.add_argument("--latency", action="store_true", help="also time one image on the CPU (batch 1, its views)")
    ev.set_defaults(func=cmd_eval)

    cal = sub.add_parser(
        "calibrate", help="fit one temperature per head on validation; eval, label and serve then use it"
    )
    cal.add_argument("--model", required=True, help="run folder or checkpoint file (its best.pt gets the temperatures)")
    cal.add_argument("--split", default="val", help="val (default): the run's validation split")
    cal.add_argument("--out", help="report folder (default: <run>/val)")
    cal.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    cal.add_argument(
        "--precision", default="fp32", choices=setting_choices("label.precision"), help=setting_help("label.precision")
    )
    cal.add_argument("words", nargs="*", metavar="key=value", help="data.* settings, e.g. where the data moved")
    cal.set_defaults(func=cmd_calibrate)

    det = sub.add_parser(
        "detect", help="find people and garment regions in photos; write CSV/JSONL (and previews)", epilog=EPILOG
    )
    det.add_argument(
        "words", nargs="+", metavar="PATH", help="image files or folders (searched recursively); detect.*=…"
    )
    det.add_argument("--out", required=True, help="output file: .csv or .jsonl, one row per region")
    det.add_argument("--preview", metavar="DIR", help="also save each image with its regions drawn into DIR")
    det.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    det.set_defaults(func=cmd_detect, takes_paths=True)

    lab = sub.add_parser(
        "label",
        help="label folders of photos: one row per crop with every head's label (resumable)",
        epilog="Exit status: 0 every image labelled; 3 finished, some files unreadable (see OUT.errors.csv).",
    )
    lab.add_argument(
        "words", nargs="+", metavar="PATH", help="folders (recursive), image files, .txt lists of paths; detect.*=…"
    )
    lab.add_argument("--model", action="append", required=True, help="run folder or checkpoint; repeat to ensemble")
    lab.add_argument("--out", required=True, help="output: .csv, .jsonl or .parquet (re-run to resume)")
    # Each flag is a label.* setting: its default and help come from hierarchy/config/schema.py (LabelConfig).
    for flag, key, kind in LABEL_FLAGS:
        lab.add_argument(flag, type=kind, default=None, help=setting_help(f"label.{key}"))
    lab.set_defaults(func=cmd_label, takes_paths=True)

    export_cmd = sub.add_parser(
        "export", help="write a run as an ONNX model (+ JSON) that labels without our training code"
    )
    export_cmd.add_argument("--model", required=True, help="run folder or checkpoint file")
    export_cmd.add_argument("--format", default="onnx", help="onnx (the one format)")
    export_cmd.add_argument("--out", default="artifacts/export", help="folder for <run>.onnx and <run>.json")
    export_cmd.add_argument(
        "--views", default="", choices=setting_choices("label.views"), help=setting_help("label.views")
    )
    export_cmd.add_argument("--tta-shift", type=int, default=None, help="pixels of the shifted views to bake in")
    export_cmd.set_defaults(func=cmd_export)

    srv = sub.add_parser("serve", help="web app: label one photo, review and correct a labels file, export corrections")
    srv.add_argument("--model", action="append", required=True, help="run folder or checkpoint; repeat to ensemble")
    srv.add_argument("--labels", help="a labels file of `hierarchy label` (.parquet, .csv, .jsonl) to review")
    srv.add_argument(
        "--pool",
        action="append",
        help="unlabelled photos for the Label page's questions: a folder, a .txt list or a labels file; repeatable",
    )
    srv.add_argument(
        "--db",
        help="corrections and answers database (SQLite; default: beside --labels as "
        "LABELS.corrections.sqlite, answers beside --pool as POOL.answers.sqlite)",
    )
    srv.add_argument("--groups", help=active_commands.GROUPS_HELP)
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    srv.add_argument("--token", default="", help="require this token (open the printed address, which carries it)")
    srv.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    srv.add_argument("--max-upload-mb", type=float, default=20.0, help="largest photo upload accepted (default 20)")
    srv.add_argument(
        "--crop",
        default="",
        choices=setting_choices("label.crop"),
        help=setting_help("label.crop"),
    )
    srv.add_argument(
        "--precision", default="fp32", choices=setting_choices("label.precision"), help=setting_help("label.precision")
    )
    srv.add_argument("words", nargs="*", metavar="key=value", help="queue.* settings, e.g. queue.cost_fine=5")
    srv.set_defaults(func=cmd_serve)

    active_commands.add_parsers(sub, EPILOG)

    cor = sub.add_parser("corrections", help="the review's corrections: export them as a training manifest")
    cor_sub = cor.add_subparsers(dest="action", required=True)
    exp = cor_sub.add_parser("export", help="write a CSV manifest (path,label,x1,y1,x2,y2,split) for data.format=csv")
    exp.add_argument("--db", required=True, help="the corrections database of `hierarchy serve`")
    exp.add_argument("--out", required=True, help="the manifest CSV to write")
    exp.set_defaults(func=cmd_corrections)
    return parser


def read_words(args: argparse.Namespace, extra: list[str]) -> None:
    """The one place that reads a command's positional words, before and after its options: into ``args.paths``
    and ``args.settings`` (key=value), refusing a setting the command would ignore (``config.COMMANDS``)."""
    args.paths, args.settings = split_words([*getattr(args, "words", []), *extra], getattr(args, "takes_paths", False))
    command = " ".join([args.command, *(["--stage", args.stage] if "stage" in args else [])])  # "run --stage fine"
    refuse_ignored(command, parse_overrides(args.settings))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # timm must never wait on a model hub
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    parser = build_parser()
    # Positional words may stand before or after the options; argparse leaves those after them over (extra).
    args, extra = parser.parse_known_args(argv)
    options = [word for word in extra if word.startswith("-")]
    if options:
        parser.error(f"unrecognized arguments: {' '.join(options)}")
    if getattr(args, "help_config", False):
        print(help_text())
        return 0
    try:
        read_words(args, extra)
        return args.func(args)
    except UserError as exc:
        print(f"hierarchy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hierarchy: interrupted; continue a training run with resume=auto", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
