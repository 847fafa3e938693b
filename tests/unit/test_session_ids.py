"""Which session ids can key a session: any text up to 128 characters, no control characters."""

import pytest

from tools_store.sessions import check_session_id


@pytest.mark.parametrize("session", ["a1b2c3d4e5f6", "my project / week 3", "ünïcode-id",
                                     "👨\u200d👩\u200d👧", "no\u00a0break", "x" * 128])
def test_ids_people_and_clients_use_are_kept(session):
    assert check_session_id(session) == session


@pytest.mark.parametrize("session, says", [
    ("", "is empty"), ("x" * 129, "has 129 characters; at most 128"),
    ("a\x00b", "control character"), ("two\nlines", "control character"),
    ("tab\there", "control character"), ("a\udcffb", "not valid UTF-8"),
])
def test_ids_no_session_can_have_are_refused(session, says):
    with pytest.raises(ValueError, match=says):
        check_session_id(session)
