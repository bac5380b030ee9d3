"""The one source of truth for labels and the Result rubric (../shared/LABELING.md)."""

from __future__ import annotations

SECTION_LABELS: tuple[str, ...] = ("SITUATION", "TASK", "ACTION", "RESULT", "OTHER")
STAR_LABELS: tuple[str, ...] = SECTION_LABELS[:4]  # the four scored by macro-F1
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(SECTION_LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(SECTION_LABELS))

FACTS: tuple[str, ...] = ("T", "B", "NB", "V")
NUM_SCORES = 5  # Result quality 0..4
SCORE_NAMES: tuple[str, ...] = ("missing", "vague", "one-sided", "linked", "two-part")

STYLES: tuple[str, ...] = ("written", "spoken", "asr")

COMPETENCIES: tuple[str, ...] = (
    "prototype_to_production",
    "production_failure",
    "accuracy_vs_cost",
    "explaining_limits",
    "cross_functional",
    "leadership",
    "ambiguity",
    "conflict",
    "mentoring",
    "missed_deadline",
    "learning_fast",
    "disagree_with_manager",
)
STORY_TYPES: tuple[str, ...] = ("success", "failure", "lesson")
# the Action pattern of a strong failure story (../shared/seed, data/briefs/steps-2026-12.md)
FAILURE_STEPS: tuple[str, ...] = ("detection", "diagnosis", "mitigation", "prevention")


def rubric_score(has_result: bool, facts: dict[str, bool]) -> int:
    """The 0-4 Result score that LABELING.md section 2 assigns to these facts.

    V (a vague claim) never changes the score by itself: a vague claim beside a
    real, linked metric still scores on the metric.
    """
    if not has_result:
        return 0
    t, b, nb = facts["T"], facts["B"], facts["NB"]
    if b and nb:
        return 4 if t else 3
    if t and b:
        return 3
    if t or b:
        return 2
    return 1
