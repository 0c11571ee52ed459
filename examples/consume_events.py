"""Minimal consumer of the emotion-events topic: prints one line per classified face.

    python examples/consume_events.py --bootstrap 127.0.0.1:9092 [--topic emostream.events]

`emostream demo` prints its broker's address at start ("Kafka broker on 127.0.0.1:PORT").
"""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import AIOKafkaConsumer

from emostream.schemas import EmotionEventV1


async def main(bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="latest"
    )
    await consumer.start()
    try:
        async for record in consumer:
            ev = EmotionEventV1.model_validate_json(record.value, extra="ignore")
            smoothed = ev.smoothed.label if ev.smoothed else "-"
            print(
                f"{ev.stream_id} #{ev.frame_seq} track={ev.face.track_id} "
                f"raw={ev.emotion.label}:{ev.emotion.confidence:.2f} smoothed={smoothed}"
            )
    finally:
        await consumer.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="emostream.events")
    p.add_argument("--group", default="example-consumer")
    a = p.parse_args()
    try:
        asyncio.run(main(a.bootstrap, a.topic, a.group))
    except KeyboardInterrupt:  # Ctrl-C: asyncio.run has already stopped the consumer
        pass
