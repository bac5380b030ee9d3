"""The ``star-scorer`` command: ``star-scorer <command> [its options]``, one command per job or tool.

    star-scorer score --input answers.csv --output scored.parquet
    star-scorer train --config configs/default.yaml
    star-scorer evaluate --data ../shared/realworld/dev.jsonl

Each command runs the ``main`` of its module with the remaining arguments, so
``star-scorer score --help`` is the scorer's own help. The Makefile's targets are
these commands.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # jobs
    "train": ("star_scorer.jobs.train", "fine-tune, calibrate, track in MLflow, register @challenger and promote it"),
    "score": ("star_scorer.jobs.score", "score a file of answers (JSONL, CSV or Parquet), streaming and resumable"),
    "score-spark": ("star_scorer.jobs.score_spark", "score a Parquet dataset on Spark through the registered model"),
    "serve": ("star_scorer.jobs.serve", "serve the registered model over REST (mlflow models serve)"),
    "evaluate": ("star_scorer.jobs.evaluate", "report a model's figures on labelled answers"),
    "calibrate": ("star_scorer.jobs.calibrate", "choose a trained model's decoding settings again"),
    "fit-story": ("star_scorer.jobs.fit_story", "fit a trained model's story heads (story type, competency, failure steps)"),
    "report": ("star_scorer.jobs.report", "self-contained HTML reports on every labelled set, the champion beside, with intervals"),
    "promote": ("star_scorer.jobs.promote", "move @champion to @challenger unless it is worse beyond the intervals"),
    # research tools
    "baselines": ("star_scorer.research.baselines", "scikit-learn baselines"),
    "robustness": ("star_scorer.research.robustness", "invariance, padding and number checks"),
    "seeds": ("star_scorer.research.seeds", "train and evaluate under several seeds"),
    "agreement": ("star_scorer.research.agreement", "a second annotator against the first, and the model against both"),
    "benchmark": ("star_scorer.research.benchmark", "scoring speed per device"),
    "bench": ("star_scorer.research.bench", "speed against the naive transformers pipeline, and peak memory by rows"),
    "refit-probe": ("star_scorer.research.refit_probe", "refit a trained model's heads with other settings"),
    # data tools
    "corpus": ("star_scorer.datatools.corpus", "check raw answer files, or build the splits (corpus build)"),
    "data": ("star_scorer.datatools.datacheck", "validate the corpus (data check) or print its tables (data stats)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: star-scorer <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"star-scorer: expected a command among {sorted(COMMANDS)}, found {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    result = importlib.import_module(COMMANDS[command][0]).main(rest)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
