"""Custom actions of the feedback bot, named from flows/feedback.yaml."""

from __future__ import annotations

from loguru import logger

from engine.custom import ActionContext, action

URGENT_WORDS = ("shoshilinch", "muhim", "zudlik", "tezkor")
URGENT_CATEGORIES = ("dekanat", "teacher")


@action("priority")
def priority(context: ActionContext, text: str, category: str = "") -> str:
    """high for an urgent word or a sensitive category, medium over 200 characters, else low.

    The suggestions API has no field for it, so it is logged with the submission.
    """
    lowered = text.lower()
    if category in URGENT_CATEGORIES or any(word in lowered for word in URGENT_WORDS):
        level = "high"
    elif len(text) > 200:
        level = "medium"
    else:
        level = "low"
    logger.info(
        "submission priority chat={} category={} priority={} length={}",
        context.chat_id,
        category or "-",
        level,
        len(text),
    )
    return level
