"""Per-stream frame counters of the ingest HTTP server: bounded, identities never repeat."""

from __future__ import annotations

from emostream.ingest.stream_seq import MAX_STREAMS, StreamCounters


def test_a_forgotten_stream_comes_back_under_a_new_run():
    counters = StreamCounters("run0")
    first = [counters.take("cam") for _ in range(40)]
    for i in range(MAX_STREAMS + 1):
        counters.take(f"other-{i}")
    later = [counters.take("cam") for _ in range(40)]
    assert len(counters) == MAX_STREAMS  # bounded
    assert [seq for _, seq in first] == list(range(40))
    assert [seq for _, seq in later] == list(range(40))  # numbered from 0 again...
    assert len(set(first + later)) == 80  # ...in a run of its own: no identity repeats
    assert all(run.startswith("run0-") for run, _ in first + later)


def test_recently_used_streams_are_kept_and_client_seqs_continue():
    counters = StreamCounters("r", max_streams=2)
    assert counters.take("a") == ("r-0", 0)
    assert counters.take("b") == ("r-1", 0)
    assert counters.take("a", seq=41) == ("r-0", 41)  # the client's own number
    counters.take("c")  # forgets b, the least recently used
    assert counters.take("a") == ("r-0", 42)
    assert counters.take("b") == ("r-3", 0)
