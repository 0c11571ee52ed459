"""How closely two worker paths agree, face by face (`emostream bench worker`)."""

from __future__ import annotations

from emostream.schemas import EmotionEventV1
from emostream.tracking.tracker import iou


def agreement(reference: list[EmotionEventV1], other: list[EmotionEventV1]) -> dict:
    """Per face of the reference (on frames both processed): box IoU and dominant emotion."""

    def by_frame(events):
        out: dict[tuple[str, int], list[EmotionEventV1]] = {}
        for e in events:
            out.setdefault((e.stream_id, e.frame_seq), []).append(e)
        return out

    ref, oth = by_frame(reference), by_frame(other)
    compared = box_ok = matched = same = 0
    for key, faces in ref.items():
        if key not in oth:
            continue
        for e in faces:
            compared += 1
            a = (e.face.box.x, e.face.box.y, e.face.box.w, e.face.box.h)
            best = max(
                oth[key],
                key=lambda o: iou(a, (o.face.box.x, o.face.box.y, o.face.box.w, o.face.box.h)),
            )
            overlap = iou(a, (best.face.box.x, best.face.box.y, best.face.box.w, best.face.box.h))
            box_ok += overlap >= 0.9
            if overlap >= 0.5:
                matched += 1
                same += best.emotion.label == e.emotion.label
    return {
        "faces_compared": compared,
        "box_iou_ge_0_9": round(box_ok / compared, 4) if compared else None,
        "faces_matched": matched,
        "dominant_emotion": round(same / matched, 4) if matched else None,
    }
