"""``client.video.details`` and ``client.video.transcript``, sync and async,
through the emulator: the answers, the fallback when the first provider has
no transcript, and a bad id refused before any request."""

from __future__ import annotations

import pytest

import polyrelay
from polyrelay.testing import Emulator, Fault

CHAIN = {
    "capabilities": {
        "video.details": {"chain": ["dailymotion", "internet-archive"]},
        "video.transcript": {"chain": ["dailymotion", "internet-archive"]},
    }
}


def test_details_and_transcript_sync(emu: Emulator) -> None:
    with polyrelay.Client(CHAIN) as client:
        details = client.video.details(id="https://www.dailymotion.com/video/x7tgad0")
        assert details.capability == "video.details" and details.provider == "dailymotion"
        assert details.data["title"] == "Apollo 11: the first steps on the Moon"
        assert details.data["duration_s"] == 634
        assert details.data["channel"] == "Euronews"
        assert details.data["published_at"] == "2019-07-16T15:00:00Z"
        assert {"url", "width", "height"} <= set(details.data["thumbnails"][0])

        transcript = client.video.transcript(id="x7tgad0", language="en")
        assert transcript.provider == "dailymotion"
        assert transcript.data["language"] == "en"
        first = transcript.data["segments"][0]
        assert (first["start_s"], first["end_s"]) == (0.5, 3.0)
        assert transcript.data["text"].startswith("Fifty years ago, Apollo 11 landed on the Moon.")
    assert emu.hits("/dailymotion/static/video/451/610/35016154_subtitle_en.srt") == 1


def test_a_missing_transcript_falls_back(emu: Emulator) -> None:
    emu.fault_always("/dailymotion/static/*", Fault.status(404))
    with polyrelay.Client(CHAIN) as client:
        transcript = client.video.transcript(id="x7tgad0")
    assert transcript.provider == "internet-archive"
    assert transcript.attempts[0].outcome == "not_found"
    assert transcript.data["segments"][0]["text"] == "The Eagle has landed."


def test_a_bad_id_is_refused_before_any_request(emu: Emulator) -> None:
    with polyrelay.Client(CHAIN) as client:
        with pytest.raises(polyrelay.InvalidRequestError) as refused:
            client.video.details(id="https://vimeo.com/76979871")
    assert refused.value.field == "id"
    assert emu.requests() == []


async def test_details_and_transcript_async(emu: Emulator) -> None:
    async with polyrelay.AsyncClient(CHAIN) as client:
        details = await client.video.details(id="https://archive.org/details/Apollo11Highlights")
        transcript = await client.video.transcript(
            id="https://archive.org/details/Apollo11Highlights", language="fr"
        )
    assert details.provider == "internet-archive" and details.data["duration_s"] == 1421
    assert details.attempts[0].outcome == "unsupported"
    assert transcript.provider == "internet-archive"
    assert transcript.attempts[0].outcome == "unsupported"
    assert (transcript.data["language"], transcript.data["text"]) == ("fr", "L'Aigle a atterri.")
