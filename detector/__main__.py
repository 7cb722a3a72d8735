"""Command line: ``python -m detector {predict,cluster-predict,evaluate,audit,robustness,card,calibrate,lite,
bench,video-eval,edited-faces,shards} ...``.

    python -m detector predict photo.jpg clip.mp4 folder/   # a readable table
    python -m detector predict --json photos/ > scores.jsonl
    python -m detector predict --csv photos/ > scores.csv    # the table, for a spreadsheet
    python -m detector cluster-predict photos/ --address auto --out scores.jsonl  # on a Ray cluster
    python -m detector video-eval                            # pooling on clips from the sets -> docs/VIDEO_EVAL.md
    python -m detector edited-faces                          # faces pasted or morphed here -> the card
    python -m detector evaluate --split test --out reports/  # metrics JSON + ROC/confusion plots
    python -m detector audit                                 # can trivial statistics tell real from fake per source?
    python -m detector calibrate                             # refit calibration on validation data
    python -m detector lite                                  # weights/model.tflite: the network predict runs on
    python -m detector bench [--quick] [--json]              # latency, throughput, start-up, training speed
    python -m detector shards --out shards/                  # TFRecord shards for python train.py --shards

Exit status of ``predict``: 0 when every input was analysed (a photo without a face is:
its label is "no face"), 1 when some could not be read, 2 for a usage error.

``--help`` and usage errors import no TensorFlow (the defaults they show live in
``detector.defaults``); the commands start it through ``detector.startup``, without its
start-up notices.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from detector.defaults import (
    BENCH_SECTIONS,
    CLUSTER_BATCH_ROWS,
    EDITED_FACES_JPEG,
    EDITED_FACES_PER_SET,
    EXAMPLES,
    IMAGES_PER_SHARD,
    INPUT_SIZE,
    PREDICT_BATCH_SIZE,
    PREDICT_WORKERS,
    SHARED_DATA,
    SHARED_SETS,
    VIDEO_EVAL_FRAMES,
    VIDEO_EVAL_JSON,
    VIDEO_EVAL_MD,
    VIDEO_EVAL_SETS,
    VIDEO_MAX_FRAMES,
    VIDEO_SAMPLE_FPS,
)
from detector.startup import import_tensorflow
from detector.wording import CSV_HEADER, csv_line, csv_row, record_cells

#: ``predict`` shows a progress bar from this many inputs (on a terminal, without --quiet).
PROGRESS_FROM = 20
#: ``--max-frames`` of ``predict`` and ``cluster-predict``.
MAX_FRAMES_HELP = (f"most frames scored per video (default {VIDEO_MAX_FRAMES}: {VIDEO_SAMPLE_FPS:g} a second up "
                   f"to {VIDEO_MAX_FRAMES / VIDEO_SAMPLE_FPS:g} s; a longer clip gets them spread over all of it, so "
                   f"raise it to score a long clip {VIDEO_SAMPLE_FPS:g} frames a second)")
#: ``--overlays`` of ``predict`` and ``cluster-predict``.
OVERLAYS_HELP = ("also write each image with its faces boxed over their Grad-CAM maps, as the page shows it, to "
                 "DIR/<its path>.png, and each video's most suspicious frame (slower: each face's Grad-CAM, each "
                 "image decoded again)")


def _scan(paths: list[str]) -> tuple[int, int]:
    """How many inputs there are and the length of the longest path (the table's column)."""
    from detector.batch_scoring import iter_inputs

    count = width = 0
    for path in iter_inputs(paths):
        count, width = count + 1, max(width, len(str(path)))
    return count, width


#: The table's columns after the path: (title, width).
COLUMNS = (("verdict", 9), ("fake prob.", 10), ("faces", 5))


def table_header(path_width: int) -> str:
    """The table's first line, its path column ``path_width`` wide."""
    (verdict, vw), (prob, pw), (faces, fw) = COLUMNS
    return f"{'path':<{path_width}}  {verdict:<{vw}}  {prob:>{pw}}  {faces:>{fw}}  details"


def table_row(record: dict, path_width: int) -> str:
    """One input's line: its verdict, highest fake probability, face count, and the details
    (``wording.record_cells``)."""
    (_, vw), (_, pw), (_, fw) = COLUMNS
    label, prob, faces, details = record_cells(record)
    return f"{record['path']:<{path_width}}  {label:<{vw}}  {prob:>{pw}}  {faces:>{fw}}  {details}"


def cmd_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from detector import Detector
    from detector.batch_scoring import iter_inputs, score_paths

    detector = Detector.load(args.weights)
    total, path_width = _scan(args.paths)
    path_width = max(path_width, len("path"))
    # The bar goes to stderr, and only to a terminal (a log file gets no bar copies); rows go
    # through tqdm.write, which lifts the bar off the screen while a row is printed.
    show_bar = not args.quiet and sys.stderr.isatty() and total >= PROGRESS_FROM
    if args.csv:
        header, row = csv_line(CSV_HEADER), lambda record: csv_line(csv_row(record))
    elif args.json:
        header, row = None, json.dumps
    else:
        header, row = table_header(path_width), lambda record: table_row(record, path_width)
    failed = 0
    with tqdm(total=total, unit="img", file=sys.stderr, disable=not show_bar, leave=False) as bar:
        if header:
            tqdm.write(header, file=sys.stdout)
        for record in score_paths(detector, iter_inputs(args.paths), args.workers, args.batch_size,
                                  overlays=args.overlays, video_frames=args.max_frames):
            failed += record["error"] is not None
            tqdm.write(row(record), file=sys.stdout)
            sys.stdout.flush()
            bar.update()
    return 1 if failed else 0


def cmd_cluster_predict(args: argparse.Namespace) -> int:
    from detector.distributed import main

    if bool(args.paths) == bool(args.file_list):
        print("error: give files or folders, or --file-list, not both", file=sys.stderr)
        return 2
    return main(args)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from detector.evaluate_sets import evaluate_sets

    from detector.card import verdicts_table

    report = evaluate_sets(args.sets, args.split, args.out, weights=args.weights, limit=args.limit, gradcam=args.gradcam)
    print(json.dumps(report, indent=2) if args.full else verdicts_table(report))
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from detector.card import CHANGED_SECTION, WEIGHTS_DIR, ModelCard, write_section
    from detector.robustness import card_block, robustness_report

    report = robustness_report(args.sets, args.out, args.split, weights=args.weights, limit=args.limit)
    if not args.no_card:
        # The page's sentences read these figures as the card's own test sets': figures on other
        # sets or splits stay in the report.
        own = set(ModelCard.load(args.weights or WEIGHTS_DIR).data.get("sets", {}))
        if args.split == "test" and set(report["sets"]) == own:
            write_section(args.weights, CHANGED_SECTION, card_block(report))
        else:
            print(f"the model card was left as it was: its figures are the test split of its own sets "
                  f"({sorted(own)}), not the {args.split} split of {sorted(report['sets'])}", file=sys.stderr)
    print(json.dumps({"goal": report["goal"], "sets": {
        name: {c: {k: v for k, v in row.items() if k != "n"} for c, row in rows.items()}
        for name, rows in report["sets"].items()}}, indent=1))
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from detector.card import WEIGHTS_DIR, ModelCard, carry_unseen, update_readme

    folder = args.weights or WEIGHTS_DIR
    card = ModelCard.load(folder)
    if args.unseen_from:
        card = carry_unseen(card, ModelCard.load(args.unseen_from))
    card.save(folder)  # re-renders MODEL_CARD.md from the JSON
    if args.update_readme:
        changed = update_readme(args.readme, card)
        print(f"{args.readme}: {'updated' if changed else 'already up to date'}")
    else:
        print(card.to_markdown())
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from detector.card import WEIGHTS_DIR
    from detector.training import recalibrate

    card = recalibrate(args.weights or WEIGHTS_DIR, args.data)
    print(card.metrics_table("test"))
    return 0


def cmd_lite(args: argparse.Namespace) -> int:
    from detector.card import WEIGHTS_DIR
    from detector.lite import LITE_FILE
    from detector.training import write_lite

    folder = Path(args.weights or WEIGHTS_DIR)
    card = write_lite(folder, args.data)
    print(card.metrics_table("test"))
    print(f"{folder / LITE_FILE}: sha256 {card.lite_sha256}, {card.lite_quantization}; the card's calibration "
          "is fitted through it (predict, the demo and evaluate score on it)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from detector.bench import main

    return main(args.weights, quick=args.quick, as_json=args.json, only=tuple(args.only))


def cmd_audit(args: argparse.Namespace) -> int:
    from detector.audit import format_table, run_audit

    report = run_audit(args.sets, args.split, args.limit, args.stream_batches)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


def cmd_video_eval(args: argparse.Namespace) -> int:
    from detector.video_eval import main, markdown

    report = main(args.weights, args.data, args.sets, args.frames, args.limit, not args.no_card, args.out, args.json_out)
    print(markdown(report))
    return 0


def cmd_edited_faces(args: argparse.Namespace) -> int:
    from detector.edits import edited_faces

    print(edited_faces(args.weights, args.data, args.sets, args.examples or None, args.per_set, args.jpeg, args.save,
                       not args.no_card))
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from detector.shards import write_shards

    for folder in args.sets:
        index = write_shards(folder, args.out, args.images_per_shard, args.input_size, args.face_margin)
    print(json.dumps(index, indent=1))
    return 0


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def integer(text: str) -> int:  # argparse names it: "invalid integer value: 'x'"
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return integer


non_negative, positive = at_least(0), at_least(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m detector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, help="folder with model.keras and model_card.json (default: weights/)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="score images, videos and folders")
    p.add_argument("paths", nargs="+", help="image and video files, and folders (walked)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per input and line")
    output.add_argument("--csv", action="store_true",
                        help="a CSV table for spreadsheets: path, kind, verdict, fake_probability (unrounded), faces, "
                             "details")
    p.add_argument("--quiet", action="store_true",
                   help=f"no progress bar (it shows on a terminal's stderr from {PROGRESS_FROM} inputs)")
    p.add_argument("--workers", type=non_negative, default=PREDICT_WORKERS,
                   help=f"threads that read images and find faces (default {PREDICT_WORKERS}; 0: one input at a time)")
    p.add_argument("--overlays", metavar="DIR", default=None, help=OVERLAYS_HELP)
    p.add_argument("--batch-size", type=positive, default=PREDICT_BATCH_SIZE,
                   help=f"face crops per call of the network, gathered across images (default {PREDICT_BATCH_SIZE})")
    p.add_argument("--max-frames", type=positive, default=VIDEO_MAX_FRAMES, metavar="N", help=MAX_FRAMES_HELP)
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="metrics and plots on labelled sets")
    e.add_argument("--sets", nargs="+", default=[str(SHARED_DATA / name) for name in SHARED_SETS])
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--out", default="reports", help="folder for metrics.json and the plots (default reports/)")
    e.add_argument("--limit", type=int, default=None, help="at most this many images per label and set")
    e.add_argument("--gradcam", action="store_true",
                   help="also measure the share of each face's Grad-CAM heat inside its face box (slower)")
    e.add_argument("--full", action="store_true", help="print the whole report as JSON instead of the table")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("robustness", help="AUC, flipped verdicts and reals called fake under JPEG, resizing, blur, "
                       "smoothing and black and white")
    r.add_argument("--sets", nargs="+", default=e.get_default("sets"))
    r.add_argument("--split", default="test", choices=("train", "val", "test"))
    r.add_argument("--out", default="reports/robustness", help="folder for robustness.json and .png")
    r.add_argument("--limit", type=int, default=None, help="at most this many images per label and set")
    r.add_argument("--no-card", action="store_true", help="do not write the figures into the weights' model card "
                   "(written when the test split of the card's own sets is scored: the page names the changes "
                   "that turn verdicts from them)")
    r.set_defaults(func=cmd_robustness)

    c = sub.add_parser("card", help="print the model card; --update-readme rewrites the README's metrics table")
    c.add_argument("--update-readme", action="store_true")
    c.add_argument("--unseen-from", metavar="WEIGHTS",
                   help="carry the leave-one-source-out runs of another card (the weights these replace) into "
                        "this one, each marked with the settings in which that recipe differs from this one's")
    c.add_argument("--readme", default=str(Path(__file__).resolve().parent.parent / "README.md"))
    c.set_defaults(func=cmd_card)

    k = sub.add_parser("calibrate", help="refit calibration, threshold and band on the validation splits; re-score the card")
    k.add_argument("--data", default=str(SHARED_DATA), help="folder holding the card's sets, by name (default ../shared/data)")
    k.set_defaults(func=cmd_calibrate)

    t = sub.add_parser("lite", help="convert the weights for LiteRT's CPU runtime (model.tflite, quantized, which "
                       "scoring runs on) and refit the calibration through it")
    t.add_argument("--data", default=str(SHARED_DATA), help="folder holding the card's sets, by name (default ../shared/data)")
    t.set_defaults(func=cmd_lite)

    b = sub.add_parser("bench", help="latency, throughput, model size, training speed and app start-up on this machine")
    b.add_argument("--weights", default=argparse.SUPPRESS, help="folder with model.keras and model_card.json (default: weights/)")
    b.add_argument("--quick", action="store_true", help="few repeats: well under a minute")
    b.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    b.add_argument("--only", nargs="+", default=list(BENCH_SECTIONS), choices=BENCH_SECTIONS, metavar="SECTION",
                   help=f"run only these parts: {', '.join(BENCH_SECTIONS)} (default all; folder runs network too: "
                        "its ratios are to the reference measured there)")
    b.set_defaults(func=cmd_bench)

    a = sub.add_parser("audit", help="shortcut audit: how well trivial image statistics tell each source's labels apart")
    a.add_argument("--sets", nargs="+", default=[str(SHARED_DATA / name) for name in SHARED_SETS])
    a.add_argument("--split", default="train", choices=("train", "val", "test"), help="split whose files are audited")
    a.add_argument("--limit", type=int, default=600, help="faces per label and set for the files half (default 600)")
    a.add_argument("--stream-batches", type=int, default=40,
                   help="training batches drawn for the stream half (default 40; 0 skips it)")
    a.add_argument("--out", default=None, help="also write the report as JSON to this file")
    a.add_argument("--json", action="store_true", help="print JSON instead of the table")
    a.set_defaults(func=cmd_audit)

    d = sub.add_parser("cluster-predict", help="score files on a Ray cluster (pip install -r requirements-scale.txt)",
                       description="Score image and video files on a Ray cluster, or on Ray on this machine: the "
                                   "records of predict --json, in input order (docs/SCALE.md).")
    d.add_argument("paths", nargs="*", help="image and video files, and folders (walked as predict walks them)")
    d.add_argument("--file-list", default=None, help="a text file of paths, one a line, read by the cluster")
    d.add_argument("--out", default=None, help="write the JSON lines to this file (default: standard output)")
    d.add_argument("--address", default=None,
                   help="the Ray cluster: 'auto' (the one this machine is in) or host:port; default: start Ray here")
    d.add_argument("--actors", type=positive, default=2, help="detectors loaded at once across the cluster (default 2)")
    d.add_argument("--cpus-per-actor", type=positive, default=1, help="cores Ray gives each detector (default 1)")
    d.add_argument("--batch-size", type=positive, default=PREDICT_BATCH_SIZE,
                   help=f"face crops per call of the network (default {PREDICT_BATCH_SIZE})")
    d.add_argument("--batch-rows", type=positive, default=CLUSTER_BATCH_ROWS,
                   help=f"paths per batch sent to a detector (default {CLUSTER_BATCH_ROWS})")
    d.add_argument("--overlays", metavar="DIR", default=None,
                   help=OVERLAYS_HELP + "; on several machines, a folder they all share")
    d.add_argument("--max-frames", type=positive, default=VIDEO_MAX_FRAMES, metavar="N", help=MAX_FRAMES_HELP)
    d.add_argument("--object-store-mb", type=positive, default=None,
                   help="Ray's object store when it starts here (default: Ray's own, 30%% of memory)")
    d.set_defaults(func=cmd_cluster_predict)

    v = sub.add_parser("video-eval", help="per-clip vs per-frame ROC-AUC on clips filmed from the sets; fits the video calibration")
    v.add_argument("--data", default=str(SHARED_DATA), help="folder holding the sets, by name (default ../shared/data)")
    v.add_argument("--sets", nargs="+", default=list(VIDEO_EVAL_SETS), help="set names with both labels")
    v.add_argument("--frames", type=int, default=VIDEO_EVAL_FRAMES, help=f"frames per clip (default {VIDEO_EVAL_FRAMES})")
    v.add_argument("--limit", type=int, default=None, help="at most this many clips per label, set and split")
    v.add_argument("--no-card", action="store_true", help="measure only: leave the model card's video calibration as it is")
    v.add_argument("--out", default=str(VIDEO_EVAL_MD), help="the Markdown report (default docs/VIDEO_EVAL.md)")
    v.add_argument("--json-out", default=str(VIDEO_EVAL_JSON), help="the JSON report (default reports/video/video_eval.json)")
    v.set_defaults(func=cmd_video_eval)

    f = sub.add_parser("edited-faces", help="faces pasted, colour-matched or morphed into the sets' real test photos: "
                       "called fake? (into the model card)")
    f.add_argument("--data", default=str(SHARED_DATA), help="folder holding the sets, by name (default ../shared/data)")
    f.add_argument("--sets", nargs="+", default=list(SHARED_SETS), help="set names (those without real photos are skipped)")
    f.add_argument("--examples", default=str(EXAMPLES), help="real photos edited as a set of their own ('' to skip)")
    f.add_argument("--per-set", type=positive, default=EDITED_FACES_PER_SET,
                   help=f"real test photos edited per set (default {EDITED_FACES_PER_SET})")
    f.add_argument("--jpeg", type=positive, default=EDITED_FACES_JPEG,
                   help=f"JPEG quality of every picture scored (default {EDITED_FACES_JPEG})")
    f.add_argument("--save", default=None, help="a folder to write the edited pictures to, to look at them")
    f.add_argument("--no-card", action="store_true", help="measure only: leave the model card as it is")
    f.set_defaults(func=cmd_edited_faces)

    from detector.faces import FACE_MARGIN  # OpenCV, no TensorFlow

    s = sub.add_parser("shards", help="write labelled sets as TFRecord shards (python train.py --shards)")
    s.add_argument("--sets", nargs="+", default=e.get_default("sets"))
    s.add_argument("--out", required=True, help="shard folder (local, or gs:// ...)")
    s.add_argument("--images-per-shard", type=int, default=IMAGES_PER_SHARD, help=f"default {IMAGES_PER_SHARD}")
    s.add_argument("--input-size", type=int, default=INPUT_SIZE, help=f"crop side in px (default {INPUT_SIZE})")
    s.add_argument("--face-margin", type=float, default=FACE_MARGIN,
                   help=f"face crop side relative to the face box, as train.py --face-margin (default {FACE_MARGIN})")
    s.set_defaults(func=cmd_shards)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from detector.card import WeightsError

    if args.func not in (cmd_card, cmd_cluster_predict):  # every other command runs the model here
        import_tensorflow()

    try:
        return args.func(args)
    except WeightsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
