"""MLLP framing: split reads, several frames per read, garbage between frames, cut-short frames, oversized frames."""

from __future__ import annotations

import random

from connectors.hl7.mllp import MllpDecoder, frame

A = b"MSH|^~\\&|A|RWE|||20260310101500||ADT^A01|1|P|2.4\rPV1|1"
B = b"MSH|^~\\&|B|RWE|||20260310101500||ADT^A02|2|P|2.4\rPV1|1"


def feed_all(decoder: MllpDecoder, chunks: list[bytes]) -> list[bytes]:
    return [f.payload for chunk in chunks for f in decoder.feed(chunk)]


def test_whole_frames() -> None:
    assert feed_all(MllpDecoder(), [frame(A) + frame(B)]) == [A, B]


def test_every_split_point_gives_the_same_frames() -> None:
    stream = frame(A) + frame(B)
    for cut in range(len(stream) + 1):
        assert feed_all(MllpDecoder(), [stream[:cut], stream[cut:]]) == [A, B], cut


def test_byte_by_byte_and_random_chunks() -> None:
    stream = frame(A) + frame(B) + frame(A)
    assert feed_all(MllpDecoder(), [stream[i : i + 1] for i in range(len(stream))]) == [A, B, A]
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(stream)), 5))
        chunks = [stream[i:j] for i, j in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert feed_all(MllpDecoder(), chunks) == [A, B, A]


def test_garbage_between_frames_is_discarded_and_counted() -> None:
    decoder = MllpDecoder()
    garbage = b"\r\nhello\x00\xff\x1c\r"
    assert feed_all(decoder, [garbage + frame(A) + garbage + frame(B) + b"trailing"]) == [A, B]
    assert decoder.garbage_bytes == 2 * len(garbage) + len(b"trailing")


def test_end_block_without_carriage_return_still_ends_the_frame() -> None:
    decoder = MllpDecoder()
    assert feed_all(decoder, [b"\x0b" + A + b"\x1c" + frame(B)]) == [A, B]
    assert decoder.garbage_bytes == 0


def test_a_frame_cut_short_by_a_new_start_is_abandoned() -> None:
    decoder = MllpDecoder()
    assert feed_all(decoder, [b"\x0b" + A[:20] + frame(B)]) == [B]
    assert decoder.abandoned_frames == 1
    decoder = MllpDecoder()
    assert feed_all(decoder, [b"\x0b" + A[:20]]) == [] and decoder.partial


def test_oversized_frame_keeps_a_prefix_and_the_stream_recovers() -> None:
    decoder = MllpDecoder(max_frame_bytes=32)
    big = b"MSH|^~\\&|" + b"X" * 1000
    frames = [f for chunk in (frame(big)[:300], frame(big)[300:] + frame(A[:30])) for f in decoder.feed(chunk)]
    assert [(f.oversized, f.size, len(f.payload)) for f in frames] == [(True, len(big), 32), (False, 30, 30)]
    assert frames[0].payload == big[:32]


def test_empty_frame() -> None:
    (only,) = MllpDecoder().feed(frame(b""))
    assert (only.payload, only.oversized) == (b"", False)
