"""Who is using the app: nobody to ask on localhost, a token when it is open to a network.

``SEA_APP_TOKEN`` turns the check on: one token (its user is ``user``), or several
``name:token`` pairs separated by commas, one per person (a token holding a colon needs its
name in front). A token is accepted once from the
URL (``?token=...``, then removed from it) or from the sign-in form, and the name becomes
the owner of the sessions made in that browser tab; nobody sees another owner's sessions.
An app that listens on more than the loopback interface without a token refuses to serve.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

import streamlit as st

LOCAL_OWNER = "local"


def tokens() -> dict[str, str]:
    """Return the configured tokens and their owners; ValueError for an unusable setting.

    A part with a colon is ``name:token``, split at the first colon (a name holds none, a
    token may). An empty token would let anyone in with an empty one, and a token given
    twice would not say whose it is: both are refused.
    """
    raw = os.environ.get("SEA_APP_TOKEN", "").strip()
    found: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, colon, token = part.partition(":")
        name, token = (name.strip() or "user", token.strip()) if colon else ("user", name)
        if not token:
            raise ValueError(f"SEA_APP_TOKEN gives {name} an empty token")
        if token in found:
            raise ValueError(f"SEA_APP_TOKEN gives {found[token]} and {name} the same token")
        found[token] = name
    return found


def owner_of_token(candidate: str, known: dict[str, str]) -> str | None:
    """Return the owner of ``candidate`` (compared in constant time), or None."""
    if not candidate:
        return None
    match = None
    for token, name in known.items():
        if hmac.compare_digest(candidate.encode(), token.encode()):
            match = name
    return match


def is_loopback(address: str | None) -> bool:
    """Tell whether a listening address reaches this machine only (unset: every interface)."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def signed_in() -> str:
    """Return the owner of this browser tab, asking for a token first where one is needed."""
    if "owner" in st.session_state:
        return st.session_state["owner"]
    try:
        known = tokens()
    except ValueError as exc:
        st.error(f"The app cannot check access tokens: {exc}. Fix SEA_APP_TOKEN (see the "
                 "README) and start it again.")
        st.stop()
    if not known:
        if not is_loopback(st.get_option("server.address")):
            st.error("This app listens on a network interface and no access token is set. "
                     "Set SEA_APP_TOKEN (see the README) or serve it on 127.0.0.1.")
            st.stop()
        st.session_state["owner"] = LOCAL_OWNER
        return LOCAL_OWNER
    from_url = st.query_params.get("token")
    if from_url is not None:
        del st.query_params["token"]  # a secret does not stay in the address bar
        owner = owner_of_token(from_url, known)
        if owner:
            st.session_state["owner"] = owner
            return owner
    with st.form("sign-in"):
        st.write("This app needs an access token.")
        candidate = st.text_input("Access token", type="password")
        if st.form_submit_button("Sign in"):
            owner = owner_of_token(candidate, known)
            if owner:
                st.session_state["owner"] = owner
                st.rerun()
            st.error("That token is not valid.")
    st.stop()
    return ""  # not reached
