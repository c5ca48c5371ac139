"""The session-state stage: frames pass unchanged; the state the rules read follows both directions."""

from __future__ import annotations

from realtime_proxy.core.session_state import SessionState, SessionStateStage
from tests.playbook import Passes, Playbook, frame_of


def test_state_follows_what_went_up_and_what_came_down() -> None:
    state = SessionState()
    tools = [{"type": "function", "name": "f"}]
    update = frame_of({"type": "session.update", "session": {"tools": tools}})
    append = '{"type":"input_audio_buffer.append","audio":"' + "A" * 480 + '"}'
    created = frame_of(
        {"type": "session.created", "session": {"type": "realtime", "audio": {"output": {"voice": "marin"}}}}
    )
    delta = '{"type":"response.output_audio.delta","item_id":"i1","delta":"' + "A" * 64 + '"}'
    with Playbook(SessionStateStage(state)) as play:
        play.client(update).expect(Passes(update))
        assert state.session_tools == tools
        play.client(append).expect(Passes(append))
        assert state.appended_audio_ms_upper_bound > 0
        play.server(created).expect(Passes(created))
        assert (state.session_type, state.voice) == ("realtime", "marin")
        play.server(delta).expect(Passes(delta))
        assert state.assistant_audio_produced and state.delivered_audio_ms["i1"] == 64 * 0.75 / 8.0
